package pdp

// For the tests: a pack's bounds, and the stream's writer goroutine's end.
const (
	MaxPack      = maxPack
	MaxPackBytes = maxPackBytes
)

func WriterDone(s *EnforceStream) <-chan struct{} { return s.writer.done }
