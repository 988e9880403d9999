package agent

import "testing"

func TestChooseDesktop(t *testing.T) {
	tests := []struct {
		name    string
		display string
		env     map[string]string
		want    string
	}{
		{"X11 session", "", map[string]string{"XDG_SESSION_TYPE": "x11", "DISPLAY": ":0"}, DesktopX11},
		{"Wayland session", "", map[string]string{"XDG_SESSION_TYPE": "wayland", "DISPLAY": ":0"}, DesktopPortal},
		{"Wayland display only", "", map[string]string{"WAYLAND_DISPLAY": "wayland-0"}, DesktopPortal},
		{"Wayland, X display asked for", ":1", map[string]string{"XDG_SESSION_TYPE": "wayland", "WAYLAND_DISPLAY": "wayland-0"}, DesktopX11},
		{"nothing known", "", nil, DesktopX11},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ChooseDesktop(tt.display, func(k string) string { return tt.env[k] }); got != tt.want {
				t.Errorf("ChooseDesktop = %q, want %q", got, tt.want)
			}
		})
	}
}
