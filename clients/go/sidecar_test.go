package pdp_test

// The tests run against the real sidecar: `pdp serve` from the repository's
// venv ($PDP_BIN, default <repo>/.venv/bin/pdp), started once per test
// binary on a free loopback port, and again on a Unix socket where a test
// needs one.

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	repoRoot, _ = filepath.Abs("../..")
	listening   = regexp.MustCompile(`listening on (\S+)`)
	// The sidecar on examples/policies.yaml that most tests share.
	sharedTarget string
)

type sidecar struct {
	target  string
	process *exec.Cmd
	done    chan struct{}
	mu      sync.Mutex
	log     []string
}

func pdpBin() string {
	if bin := os.Getenv("PDP_BIN"); bin != "" {
		return bin
	}
	return filepath.Join(repoRoot, ".venv", "bin", "pdp")
}

// startSidecar runs `pdp serve` with snapshot, listening on listen, and
// waits for its "listening on" line.
func startSidecar(snapshot, listen, stateDir string, extra ...string) (*sidecar, error) {
	args := []string{"serve", "--snapshot", snapshot, "--state", filepath.Join(stateDir, "state.db"), "--listen", listen}
	process := exec.Command(pdpBin(), append(args, extra...)...)
	stderr, err := process.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := process.Start(); err != nil {
		return nil, fmt.Errorf("cannot start %s (make .venv/.installed, or set PDP_BIN): %w", pdpBin(), err)
	}
	s := &sidecar{process: process, done: make(chan struct{})}
	found := make(chan string, 1)
	go func() {
		defer close(s.done)
		lines := bufio.NewScanner(stderr)
		for lines.Scan() {
			line := lines.Text()
			s.mu.Lock()
			s.log = append(s.log, line)
			s.mu.Unlock()
			if match := listening.FindStringSubmatch(line); match != nil {
				select {
				case found <- match[1]:
				default:
				}
			}
		}
		_, _ = io.Copy(io.Discard, stderr)
	}()
	select {
	case s.target = <-found:
		return s, nil
	case <-s.done:
		_ = process.Wait()
		return nil, fmt.Errorf("pdp serve exited before listening:\n%s", s.output())
	case <-time.After(30 * time.Second):
		s.stop()
		return nil, fmt.Errorf("pdp serve did not listen within 30 s:\n%s", s.output())
	}
}

func (s *sidecar) output() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Join(s.log, "\n")
}

func (s *sidecar) stop() {
	_ = s.process.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		_ = s.process.Process.Kill()
	}
	_ = s.process.Wait()
}

// startTestSidecar starts a sidecar for one test, stopped when it ends.
func startTestSidecar(t *testing.T, snapshot, listen string, extra ...string) *sidecar {
	t.Helper()
	s, err := startSidecar(snapshot, listen, t.TempDir(), extra...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.stop)
	return s
}

func TestMain(m *testing.M) {
	stateDir, err := os.MkdirTemp("", "pdp-go-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	shared, err := startSidecar(filepath.Join(repoRoot, "examples", "policies.yaml"), "127.0.0.1:0", stateDir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	sharedTarget = shared.target
	code := m.Run()
	shared.stop()
	_ = os.RemoveAll(stateDir)
	os.Exit(code)
}

// closedPort is a loopback address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	address := listener.Addr().String()
	_ = listener.Close()
	return address
}

// silentServer accepts connections and never answers, as a wedged sidecar
// would.
func silentServer(t *testing.T) string {
	t.Helper()
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns []net.Conn
	var mu sync.Mutex
	go func() {
		for {
			conn, err := listener.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, conn)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		_ = listener.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, conn := range conns {
			_ = conn.Close()
		}
	})
	return listener.Addr().String()
}
