package node

// The relay lets the node reach registries on the host's loopback at the same address,
// 127.0.0.1:PORT, that the tests push to and name in pod specs: it listens on the node's loopback
// and dials the host's. Nothing listens on any other address.

import (
	"fmt"
	"io"
	"net"
	"os"
	"runtime"

	"golang.org/x/sys/unix"
)

// Relay listens on 127.0.0.1:<port> inside the network namespace ns and forwards each connection
// to 127.0.0.1:<port> on the host, until the listener is closed.
func Relay(ns, port string) (io.Closer, error) {
	l, err := listenIn(ns, "127.0.0.1:"+port)
	if err != nil {
		return nil, err
	}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				h, err := net.Dial("tcp", "127.0.0.1:"+port)
				if err != nil {
					return
				}
				defer h.Close()
				go func() { _, _ = io.Copy(h, c); h.(*net.TCPConn).CloseWrite() }()
				_, _ = io.Copy(c, h)
			}()
		}
	}()
	return l, nil
}

// listenIn opens a listener from a thread that has entered the namespace ns; a socket stays in
// the namespace it was made in, so the thread then goes back.
func listenIn(ns, addr string) (net.Listener, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	self, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		return nil, err
	}
	defer self.Close()
	target, err := os.Open("/run/netns/" + ns)
	if err != nil {
		return nil, err
	}
	defer target.Close()
	if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
		return nil, fmt.Errorf("setns %s: %w", ns, err)
	}
	l, lerr := net.Listen("tcp", addr)
	if err := unix.Setns(int(self.Fd()), unix.CLONE_NEWNET); err != nil {
		panic(fmt.Sprintf("cannot return to the host's network namespace: %v", err))
	}
	return l, lerr
}
