package vsphere

import (
	"io"
	"sync"
	"sync/atomic"
)

// Buffers of a download in flight. Measured on the export of 1 GiB from
// the simulator (bench/vsphere/export.sh, perf): with 1 MiB buffers the
// kernel's copy of each write into the page cache took 30% of the
// export's CPU, the buffer having left the core's cache between the read
// and the write; with 128 KiB ones it takes 4%, and the export's system
// time falls to that of a bare copy of the same stream.
const (
	pipeBufSize = 128 << 10
	pipeBufs    = 8
)

// pipeBuf is one buffer, shared by the summer and the writer: it returns
// to the reader once both are done with it.
type pipeBuf struct {
	b    []byte
	refs atomic.Int32
}

// pipe copies src to f and to sum (the hash and the structure check) on
// three goroutines: one reads (TLS decryption), one sums, one writes, so
// that sha256 (about 1.7 GB/s a core with SHA-NI) adds its time neither
// to the decryption nor to the write where cores allow. onWrite is called
// with the bytes written so far; abort is called once, on the first
// failure of the sum or the write, to unblock a read in progress. It
// returns the bytes written to f and the bytes the sum saw: the same when
// the read failed or ended (both take every buffer read; a request
// cancelled ends the read), so that a download resumed after a cut or a
// stall goes on with the sum as it is; they differ only after the write
// or the sum itself failed. Only io.EOF ends the copy cleanly:
// io.ErrUnexpectedEOF is a body cut before the end its framing
// announced, and is returned as the error it is.
func pipe(f io.Writer, sum io.Writer, src io.Reader, onWrite func(int64), abort func()) (written, summed int64, err error) {
	free := make(chan *pipeBuf, pipeBufs)
	toSum := make(chan *pipeBuf, pipeBufs)
	toWrite := make(chan *pipeBuf, pipeBufs)
	for range pipeBufs {
		free <- &pipeBuf{b: make([]byte, pipeBufSize)}
	}
	release := func(p *pipeBuf) {
		if p.refs.Add(-1) == 0 {
			free <- p
		}
	}
	stop := make(chan struct{})
	var once sync.Once
	halt := func() { once.Do(func() { close(stop); abort() }) }

	readErr := make(chan error, 1)
	go func() { readErr <- pipeRead(src, free, stop, toSum, toWrite) }()

	var sumErr error
	sumDone := make(chan struct{})
	go func() {
		defer close(sumDone)
		for p := range toSum {
			if sumErr == nil {
				if _, sumErr = sum.Write(p.b); sumErr != nil {
					halt()
				} else {
					summed += int64(len(p.b))
				}
			}
			release(p)
		}
	}()

	var werr error
	for p := range toWrite {
		if werr == nil {
			if _, werr = f.Write(p.b); werr == nil {
				written += int64(len(p.b))
				onWrite(written)
			} else {
				halt()
			}
		}
		release(p)
	}
	<-sumDone
	rerr := <-readErr
	for _, err := range []error{werr, sumErr, rerr} {
		if err != nil {
			return written, summed, err
		}
	}
	return written, summed, nil
}

// pipeRead fills free buffers from src and hands each to both the summer
// and the writer, until src ends or fails or stop is closed. The two
// queues hold every buffer there is, so handing over never blocks.
func pipeRead(src io.Reader, free <-chan *pipeBuf, stop <-chan struct{}, toSum, toWrite chan<- *pipeBuf) error {
	defer close(toSum)
	defer close(toWrite)
	for {
		var p *pipeBuf
		select {
		case p = <-free:
		case <-stop:
			return nil
		}
		n, err := fill(src, p.b[:cap(p.b)])
		if n > 0 {
			p.b = p.b[:n]
			p.refs.Store(2)
			toSum <- p
			toWrite <- p
		} else {
			p.b = p.b[:cap(p.b)]
		}
		switch {
		case err == io.EOF:
			return nil
		case err != nil:
			return err
		}
	}
}

// fill reads into buf until it is full or src fails; unlike io.ReadFull it
// returns src's own error, so that a clean end (io.EOF) and a cut one
// (io.ErrUnexpectedEOF) stay apart.
func fill(src io.Reader, buf []byte) (int, error) {
	n := 0
	for n < len(buf) {
		k, err := src.Read(buf[n:])
		n += k
		if err != nil {
			return n, err
		}
	}
	return n, nil
}
