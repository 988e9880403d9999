package client

import "context"

// WaitForType waits for the next message of type T (for example
// *protocol.Ended) that match accepts; match may be nil. Other messages
// stay queued in order.
func WaitForType[T any](ctx context.Context, c *Client, match func(T) bool) (T, error) {
	m, err := c.WaitFor(ctx, func(m any) bool {
		v, ok := m.(T)
		return ok && (match == nil || match(v))
	})
	if err != nil {
		var zero T
		return zero, err
	}
	return m.(T), nil
}
