package test

import (
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/chromedp/chromedp"
)

// Chromium's fake microphone beeps for 20 ms every half second: too little
// to count as someone speaking. A browser that should be heard talking
// captures a recording instead.

// voiceSampleRate is the rate of the recording talking browsers capture.
const voiceSampleRate = 48000

// writeVoiceWAV writes a few seconds of speech-like sound: syllables of a
// gliding tone with harmonics, about 250 ms each, with short pauses, as
// 16-bit mono PCM. Chromium loops it.
func writeVoiceWAV(t *testing.T) string {
	t.Helper()
	const seconds = 4
	n := voiceSampleRate * seconds
	pcm := make([]byte, 2*n)
	phase := 0.0
	for i := 0; i < n; i++ {
		ts := float64(i) / voiceSampleRate
		syl := math.Mod(ts, 0.32) // 250 ms of sound, 70 ms of pause
		amp := 0.0
		if syl < 0.25 {
			amp = math.Sin(math.Pi * syl / 0.25) // rise and fall within the syllable
		}
		// The pitch glides between 140 and 260 Hz from syllable to syllable.
		f := 200 + 60*math.Sin(2*math.Pi*0.7*ts)
		phase += 2 * math.Pi * f / voiceSampleRate
		v := 0.5*math.Sin(phase) + 0.25*math.Sin(2*phase) + 0.12*math.Sin(3*phase)
		s := int16(amp * v * 0.6 * math.MaxInt16)
		binary.LittleEndian.PutUint16(pcm[2*i:], uint16(s))
	}
	var h [44]byte
	copy(h[0:], "RIFF")
	binary.LittleEndian.PutUint32(h[4:], uint32(36+len(pcm)))
	copy(h[8:], "WAVEfmt ")
	binary.LittleEndian.PutUint32(h[16:], 16)
	binary.LittleEndian.PutUint16(h[20:], 1) // PCM
	binary.LittleEndian.PutUint16(h[22:], 1) // mono
	binary.LittleEndian.PutUint32(h[24:], voiceSampleRate)
	binary.LittleEndian.PutUint32(h[28:], voiceSampleRate*2)
	binary.LittleEndian.PutUint16(h[32:], 2)
	binary.LittleEndian.PutUint16(h[34:], 16)
	copy(h[36:], "data")
	binary.LittleEndian.PutUint32(h[40:], uint32(len(pcm)))
	path := filepath.Join(t.TempDir(), "voice.wav")
	if err := os.WriteFile(path, append(h[:], pcm...), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// newTalkingBrowser is newBrowser whose microphone captures wav.
func newTalkingBrowser(t *testing.T, name, wav string) *browser {
	t.Helper()
	return newBrowser(t, name, chromedp.Flag("use-file-for-fake-audio-capture", wav))
}
