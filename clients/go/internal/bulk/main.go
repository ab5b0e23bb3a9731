// Command bulk measures decisions per second of the sidecar's own CPU for
// the Go client's unary Enforce and its EnforceStream (which packs), and for
// a stream sending one request per message through the raw generated stub
// (as the client did before it packed), at the same concurrency, in
// alternating rounds. bench/bench_client_go_java.py --bulk runs it against a
// real sidecar, whose pid it passes for the CPU time (from /proc).
//
//	go run ./internal/bulk -pid PID -input TEXT 127.0.0.1:50051
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"

	pdp "github.com/pdp-dev/pdp/clients/go"
	"github.com/pdp-dev/pdp/clients/go/pdpv1"
)

var modes = []string{"unary", "lone", "client"}

var describe = map[string]string{
	"unary":  "unary Enforce",
	"lone":   "EnforceStream, one request per message (raw stub)",
	"client": "Go client's EnforceStream (packs)",
}

type run struct {
	decisions int
	cpu       float64 // the sidecar's CPU seconds
}

func (r run) perCPU() float64 { return float64(r.decisions) / r.cpu }

func main() {
	seconds := flag.Float64("seconds", 3, "per mode and round")
	rounds := flag.Int("rounds", 5, "alternating rounds")
	concurrency := flag.Int("concurrency", 8, "callers")
	window := flag.Int("window", 8, "stream requests in flight per caller")
	pid := flag.Int("pid", 0, "the sidecar's pid, for its CPU time")
	input := flag.String("input", "What is the capital of France?", "every request's input")
	flag.Parse()
	if flag.NArg() != 1 || *pid == 0 {
		log.Fatal("usage: bulk -pid PID [-seconds S] [-rounds N] [-concurrency C] [-window W] [-input TEXT] TARGET")
	}
	client, err := pdp.NewClient(flag.Arg(0), pdp.WithTimeout(10*time.Second),
		pdp.WithDialOptions(grpc.WithStreamInterceptor(countPacks)))
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()
	b := bench{
		client: client, raw: pdpv1.NewPolicyDecisionServiceClient(client.Conn()),
		request:     pdp.EnforceRequest{AgentID: "my-chatbot", Input: input},
		concurrency: *concurrency, window: *window, pid: *pid,
	}
	var results []map[string]run
	for index := range *rounds {
		order := slices.Clone(modes)
		if index%2 == 1 {
			slices.Reverse(order)
		}
		round := map[string]run{}
		for _, mode := range order {
			b.drive(mode, 300*time.Millisecond) // warm up, not recorded
			cpu := b.cpu()
			decisions := b.drive(mode, time.Duration(*seconds*float64(time.Second)))
			round[mode] = run{decisions, b.cpu() - cpu}
		}
		results = append(results, round)
		fmt.Fprint(os.Stderr, ".")
	}
	fmt.Fprintln(os.Stderr)
	fmt.Printf("\nGo client: concurrency %d, window %d, %d rounds of %g s per mode\n", *concurrency, *window, *rounds, *seconds)
	fmt.Println("| mode | decisions per sidecar CPU-second | ratio to unary (per CPU) |")
	fmt.Println("|---|---|---|")
	for _, mode := range modes {
		var perCPU, ratios []float64
		for _, round := range results {
			perCPU = append(perCPU, round[mode].perCPU())
			ratios = append(ratios, round[mode].perCPU()/round["unary"].perCPU())
		}
		fmt.Printf("| %s | %s | %.2fx [%.2f-%.2f] |\n", describe[mode], thousands(median(perCPU)),
			median(ratios), slices.Min(ratios), slices.Max(ratios))
	}
	fmt.Printf("requests per message on the client's streams: %.2f\n", float64(packedItems.Load())/float64(packedMessages.Load()))
}

// The messages the client's streams sent, and the requests in them (the
// raw stub's stream shares the connection: counting is on in "client" only).
var (
	packedMessages, packedItems atomic.Int64
	counting                    atomic.Bool
)

func countPacks(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string,
	streamer grpc.Streamer, opts ...grpc.CallOption,
) (grpc.ClientStream, error) {
	stream, err := streamer(ctx, desc, cc, method, opts...)
	return countedStream{stream}, err
}

type countedStream struct{ grpc.ClientStream }

func (s countedStream) SendMsg(m any) error {
	if message, ok := m.(*pdpv1.EnforceStreamRequest); ok && counting.Load() {
		packedMessages.Add(1)
		packedItems.Add(int64(max(1, len(message.GetItems()))))
	}
	return s.ClientStream.SendMsg(m)
}

type bench struct {
	client      *pdp.Client
	raw         pdpv1.PolicyDecisionServiceClient
	request     pdp.EnforceRequest
	concurrency int
	window      int
	pid         int
}

// drive runs the callers of mode for d; the decisions they made.
func (b *bench) drive(mode string, d time.Duration) int {
	until := time.Now().Add(d)
	counting.Store(mode == "client")
	counts := make([]int, b.concurrency)
	var callers sync.WaitGroup
	for caller := range counts {
		callers.Go(func() {
			switch mode {
			case "unary":
				for time.Now().Before(until) {
					if _, err := b.client.Enforce(context.Background(), b.request); err != nil {
						log.Fatal(err)
					}
					counts[caller]++
				}
			case "client":
				counts[caller] = b.clientStream(until)
			case "lone":
				counts[caller] = b.loneStream(until)
			}
		})
	}
	callers.Wait()
	total := 0
	for _, count := range counts {
		total += count
	}
	return total
}

// clientStream keeps up to window requests in flight on one EnforceStream
// until the time is up, then waits for their answers.
func (b *bench) clientStream(until time.Time) int {
	stream, err := b.client.EnforceStream(context.Background())
	if err != nil {
		log.Fatal(err)
	}
	defer stream.Close()
	inFlight := make(chan struct{}, b.window)
	go func() {
		for id := 0; time.Now().Before(until); id++ {
			inFlight <- struct{}{}
			if err := stream.Send(strconv.Itoa(id), b.request); err != nil {
				log.Fatal(err)
			}
		}
		if err := stream.CloseSend(); err != nil {
			log.Fatal(err)
		}
	}()
	done := 0
	for {
		answer, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return done
		}
		if err != nil || answer.Err != nil {
			log.Fatal(err, answer.Err)
		}
		<-inFlight
		done++
	}
}

// loneStream is clientStream through the generated stub, one request per
// message.
func (b *bench) loneStream(until time.Time) int {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stream, err := b.raw.EnforceStream(ctx)
	if err != nil {
		log.Fatal(err)
	}
	message := &pdpv1.EnforceRequest{AgentId: b.request.AgentID, Input: b.request.Input}
	inFlight := make(chan struct{}, b.window)
	go func() {
		for id := 0; time.Now().Before(until); id++ {
			inFlight <- struct{}{}
			if err := stream.Send(&pdpv1.EnforceStreamRequest{Id: strconv.Itoa(id), Request: message}); err != nil {
				log.Fatal(err)
			}
		}
		if err := stream.CloseSend(); err != nil {
			log.Fatal(err)
		}
	}()
	done := 0
	for {
		answer, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return done
		}
		if err != nil || answer.GetError() != nil {
			log.Fatal(err, answer.GetError())
		}
		<-inFlight
		done++
	}
}

// cpu is the sidecar's user + system CPU time so far, from /proc, in
// seconds (clock ticks of 10 ms, Linux's USER_HZ).
func (b *bench) cpu() float64 {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", b.pid))
	if err != nil {
		log.Fatal(err)
	}
	fields := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
	user, _ := strconv.Atoi(fields[11])
	system, _ := strconv.Atoi(fields[12])
	return float64(user+system) / 100
}

func median(values []float64) float64 {
	sorted := slices.Clone(values)
	slices.Sort(sorted)
	return sorted[len(sorted)/2]
}

func thousands(value float64) string {
	digits := strconv.Itoa(int(value + 0.5))
	for i := len(digits) - 3; i > 0; i -= 3 {
		digits = digits[:i] + "," + digits[i:]
	}
	return digits
}
