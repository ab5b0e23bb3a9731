package pdp_test

import (
	"os/exec"
	"strings"
	"testing"
)

// The README's example runs as written against a sidecar on the example
// policies.
func TestQuickstartExample(t *testing.T) {
	side := startTestSidecar(t, repoRoot+"/examples/policies.yaml", "127.0.0.1:0")
	out, err := exec.Command("go", "run", "./examples/quickstart", side.target).CombinedOutput()
	if err != nil {
		t.Fatalf("quickstart failed: %v\n%s", err, out)
	}
	want := `my-chatbot: ALLOW
my-chatbot: blocked by Block Prompt Injection
support-bot: paused: Detected harmful outputs in production
answer: Your SSN on file is ***-**-6789.
spent today: $0.018
agent-a may execute agent-b: true
`
	if got := strings.ReplaceAll(string(out), "\r", ""); got != want {
		t.Fatalf("quickstart printed:\n%s\nwant:\n%s", got, want)
	}
}
