package test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	cdpbrowser "github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/serviceworker"
	"github.com/chromedp/chromedp"

	"github.com/tandemcall/tandem/internal/testkit/pushsvc"
	"github.com/tandemcall/tandem/signaling/protocol"
)

// workerRegistration is the id of the service worker registration for
// origin in b, once it is there.
func (b *browser) workerRegistration(origin string) serviceworker.RegistrationID {
	b.t.Helper()
	var id serviceworker.RegistrationID
	b.do(15*time.Second, chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := chromedp.WaitEvent(serviceworker.WorkerRegistrationUpdated, func(e serviceworker.EventWorkerRegistrationUpdated) bool {
			for _, r := range e.Registrations {
				if strings.TrimSuffix(r.ScopeURL, "/") == origin && !r.IsDeleted {
					id = r.RegistrationID
					return true
				}
			}
			return false
		}, chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			_, err := cdp.Call(ctx, tg, serviceworker.Enable, cdp.Empty{})
			return err
		}))(ctx, tg)
		return err
	}))
	return id
}

// deliver gives the service worker of origin in b a push, as the
// browser's push service would (after decrypting it).
func (b *browser) deliver(origin string, reg serviceworker.RegistrationID, p pushsvc.Push) {
	b.t.Helper()
	b.do(10*time.Second, chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, serviceworker.DeliverPushMessage, serviceworker.DeliverPushMessageParams{
			Origin: origin, RegistrationID: reg, Data: string(p.Payload)})
		return err
	}))
}

// notification is one the service worker shows.
type notification struct {
	Title   string   `json:"title"`
	Body    string   `json:"body"`
	Tag     string   `json:"tag"`
	Actions []string `json:"actions"`
	Sticky  bool     `json:"sticky"`
}

// notifications are what the origin's service worker shows now.
func (b *browser) notifications() []notification {
	b.t.Helper()
	s := eval[string](b, `navigator.serviceWorker.ready.then((r) => r.getNotifications()).then((ns) => JSON.stringify(ns.map((n) =>
		({title: n.title, body: n.body, tag: n.tag, actions: (n.actions || []).map((a) => a.action), sticky: n.requireInteraction}))))`)
	var out []notification
	if err := json.Unmarshal([]byte(s), &out); err != nil {
		b.t.Fatalf("notifications %q: %v", s, err)
	}
	return out
}

// clickNotification stands in for a person tapping a notification (or
// one of its buttons): the worker does what the click would.
func (b *browser) clickNotification(tag, action string) {
	b.t.Helper()
	eval[bool](b, fmt.Sprintf(`navigator.serviceWorker.ready.then((r) => { r.active.postMessage({type: 'notification-click', tag: %q, action: %q}); return true })`, tag, action))
}

// TestBrowserRingsAClosedApp: Tandem installs as an app; with its page
// closed, a call rings it through its service worker. The notification
// names the caller with Answer and Decline; Answer opens the app straight
// into the call with media both ways; Decline declines for the caller;
// answered on another device, or missed, the notification says so. With
// the server down, the app shows it is offline.
func TestBrowserRingsAClosedApp(t *testing.T) {
	// Long enough a ring for a busy machine to open the app from the
	// notification while it still rings.
	ts := pushNodeRinging(t, 12*time.Second)
	svc := pushsvc.Start(t)
	origin := localURL(ts)
	mom := newBrowser(t, "mom")
	mom.withPasskeys()
	mom.join(strings.Replace(ts.SetupLink(), "127.0.0.1", "localhost", 1), "Mom")
	invite := mom.makeInvite("Grandpa")

	gp := newBrowser(t, "grandpa", chromedp.Flag("disable-features", "WebRtcHideLocalIpsWithMdns,BackForwardCache"))
	gp.withPasskeys()
	gp.join(strings.Replace(invite, "127.0.0.1", "localhost", 1), "Grandpa")
	gp.waitJS("the worker in control", `!!navigator.serviceWorker.controller`, 15*time.Second)
	reg := gp.workerRegistration(origin)

	// The app installs: a valid manifest, a worker with a fetch handler.
	gp.do(10*time.Second, chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		res, err := cdp.Call(ctx, tg, page.GetInstallabilityErrors, cdp.Empty{})
		if err != nil {
			return err
		}
		if len(res.InstallabilityErrors) > 0 {
			b, _ := json.Marshal(res.InstallabilityErrors)
			return fmt.Errorf("not installable: %s", b)
		}
		return nil
	}))

	// He let Tandem show notifications (the ring, on his phone).
	gp.do(10*time.Second, chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, cdpbrowser.SetPermission, cdpbrowser.SetPermissionParams{
			Permission: &cdpbrowser.PermissionDescriptor{Name: "notifications"}, Setting: cdpbrowser.PermissionSettingGranted, Origin: origin})
		return err
	}))

	// His phone's push subscription (headless Chromium has no push
	// service of its own: the test's stands in, and hands the worker what
	// it decrypted).
	phone := account{Token: eval[string](gp, `JSON.parse(localStorage.getItem('tandem.auth')).token`)}
	sub := subscribePush(t, ts, svc, phone)

	// He closes Tandem: the page leaves for one of the origin's files, and
	// his device is offline.
	closeApp := func() {
		gp.do(10*time.Second, chromedp.Navigate(origin+"/manifest.webmanifest"))
		mom.waitJS("Grandpa offline", `document.querySelector('#contacts li[data-user="grandpa"]')?.dataset.presence === 'offline'`, 10*time.Second)
	}
	closeApp()
	used := map[int]bool{}
	// waitPush waits for a push not seen yet that match picks.
	waitPush := func(match func(ringPush) bool) pushsvc.Push {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for {
			for i, p := range svc.Pushes(sub) {
				if !used[i] && match(decodePush(t, p)) {
					used[i] = true
					return p
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("no such push among %d", len(svc.Pushes(sub)))
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	ring := func(video bool) pushsvc.Push {
		t.Helper()
		act := "audio"
		if video {
			act = "video"
		}
		mom.click(fmt.Sprintf(`#contacts li[data-user="grandpa"] button[data-act=%q]`, act))
		p := waitPush(func(r ringPush) bool { return r.Type == "ring" })
		gp.deliver(origin, reg, p)
		return p
	}

	// 1. Answer on the notification: the app opens into the call.
	p := ring(true)
	r := decodePush(t, p)
	gp.waitJS("the ringing notification", fmt.Sprintf(`navigator.serviceWorker.ready.then((r) => r.getNotifications({tag: %q})).then((ns) => ns.length === 1)`, r.CallID), 10*time.Second)
	if ns := gp.notifications(); len(ns) != 1 || ns[0].Title != "Mom" || ns[0].Body != "Video call" || !ns[0].Sticky ||
		strings.Join(ns[0].Actions, ",") != "answer,decline" {
		t.Fatalf("the ringing notification: %+v", ns)
	}
	gp.clickNotification(r.CallID, "answer")
	gp.state("in-call", 20*time.Second)
	mom.state("in-call", 20*time.Second)
	for _, b := range []*browser{mom, gp} {
		b.waitJS("video and audio both ways", `window.tandem.stats().then(s => s.framesDecoded > 30 && s.audioPacketsReceived > 50)`, 40*time.Second)
	}
	mom.click("#hangup")
	gp.state("idle", 15*time.Second)
	closeApp()

	// 2. Decline on the notification: the caller hears declined.
	r = decodePush(t, ring(false))
	gp.waitJS("the second ring", fmt.Sprintf(`navigator.serviceWorker.ready.then((r) => r.getNotifications({tag: %q})).then((ns) => ns.length === 1)`, r.CallID), 10*time.Second)
	gp.clickNotification(r.CallID, "decline")
	mom.waitJS("declined", `window.tandem.lastEnded && window.tandem.lastEnded.reason === 'declined'`, 10*time.Second)

	// 3. Answered on his laptop: the phone's notification says so.
	laptop := signInAgain(t, ts, phone, "Laptop")
	lapC := dialAccount(t, ts, laptop)
	r = decodePush(t, ring(false))
	waitType(t, lapC, func(m *protocol.Incoming) bool { return m.CallID == r.CallID })
	if err := lapC.Accept(testCtx(t, 10*time.Second), r.CallID, false); err != nil {
		t.Fatal(err)
	}
	answered := r.CallID
	gp.deliver(origin, reg, waitPush(func(m ringPush) bool { return m.Type == "ended" && m.CallID == answered }))
	gp.waitJS("answered elsewhere", fmt.Sprintf(`navigator.serviceWorker.ready.then((r) => r.getNotifications({tag: %q})).then((ns) => ns.length === 1 && ns[0].body === 'Answered on your Laptop' && !ns[0].requireInteraction)`, answered), 10*time.Second)
	mom.click("#hangup")
	ended(t, lapC, answered)
	lapC.Close()
	mom.state("idle", 10*time.Second)

	// 4. Missed: nobody answers; the notification becomes a missed call.
	r = decodePush(t, ring(false))
	id := r.CallID
	missed := waitPush(func(m ringPush) bool { return m.Type == "ended" && m.CallID == id })
	if m := decodePush(t, missed); m.Reason != "no_answer" {
		t.Fatalf("after the ring ran out: %+v", m)
	}
	gp.deliver(origin, reg, missed)
	gp.waitJS("the missed call", fmt.Sprintf(`navigator.serviceWorker.ready.then((r) => r.getNotifications({tag: %q})).then((ns) => ns.length === 1 && ns[0].body === 'Missed call from Mom')`, id), 10*time.Second)

	// 5. The server is down: the app still opens, and says it cannot reach it.
	ts.stop(t)
	gp.do(20*time.Second, chromedp.Navigate(origin+"/"))
	gp.waitJS("the offline state", `!document.querySelector('#banner').hidden && document.querySelector('#banner-text').textContent.startsWith('Offline — the server cannot be reached')`, 15*time.Second)
}
