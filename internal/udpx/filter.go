package udpx

import "net"

// Filter sees every datagram the socket reads before ReadFrom returns it.
// A filter may write to the socket (WriteTo, Cork, Uncork) from Consume
// and Flush, but must not read from it.
type Filter interface {
	// Consume is called for each datagram in order, on the goroutine calling
	// ReadFrom, with the reader's lock held. b and from are valid only during
	// the call (from is shared and must not be modified). It returns true when
	// it has handled the datagram; ReadFrom then does not return it.
	Consume(b []byte, from *net.UDPAddr) bool
	// Flush is called once after datagrams were consumed, before ReadFrom
	// blocks for more, and before it returns a datagram Consume declined.
	Flush()
}
