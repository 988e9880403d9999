package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/pflag"

	"github.com/tandemcall/tandem/internal/loadtest"
)

const loadtestUsage = `Usage:
  tandem loadtest turn --server 127.0.0.1:3478 --secret S [--allocations 10000]

Load tests run against servers on this machine only (loopback).
`

func loadtestCmd(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "turn" {
		fmt.Fprint(stderr, loadtestUsage)
		return errors.New("loadtest: name a load: turn")
	}
	fs := pflag.NewFlagSet("loadtest turn", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg loadtest.TURNConfig
	var secret string
	fs.StringVar(&cfg.Server, "server", "127.0.0.1:3478", "TURN server host:port (UDP, loopback)")
	fs.StringVar(&secret, "secret", "", "TURN REST secret (required)")
	clientIP := fs.IP("client-ip", nil, "source address of the clients (default: loopback)")
	fs.StringVar(&cfg.User, "user", "loadtest", "user id in the REST usernames")
	fs.IntVar(&cfg.Allocations, "allocations", 1000, "allocations to create and hold")
	fs.IntVar(&cfg.Workers, "workers", 16, "allocations in flight at once")
	fs.DurationVar(&cfg.Hold, "hold", 0, "how long to hold the allocations after the last one")
	fs.IntVar(&cfg.PID, "pid", 0, "server process id whose memory to measure")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if secret == "" {
		return errors.New("loadtest turn: --secret is required")
	}
	if cfg.Allocations <= 0 || cfg.Allocations > 1_000_000 {
		return fmt.Errorf("loadtest turn: --allocations %d out of range 1–1000000", cfg.Allocations)
	}
	cfg.Secret = []byte(secret)
	cfg.ClientIP = *clientIP
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	res, err := loadtest.TURNAllocations(ctx, cfg)
	fmt.Fprint(stdout, res)
	if err != nil {
		return err
	}
	if res.Failed > 0 {
		return fmt.Errorf("loadtest turn: %d allocations failed", res.Failed)
	}
	return nil
}
