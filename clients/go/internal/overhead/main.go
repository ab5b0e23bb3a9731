// Command overhead measures what the Go client adds to an Enforce call:
// the same request through Client.Enforce and through the raw generated stub
// on the client's own connection, in alternating rounds, with the same
// deadline. bench/bench_client_go_java.py runs it against a real sidecar.
//
//	go run ./internal/overhead -calls 2000 -rounds 5 127.0.0.1:50051
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"slices"
	"time"

	pdp "github.com/pdp-dev/pdp/clients/go"
	"github.com/pdp-dev/pdp/clients/go/pdpv1"
)

func main() {
	calls := flag.Int("calls", 2000, "calls per round and way")
	rounds := flag.Int("rounds", 5, "alternating rounds")
	flag.Parse()
	if flag.NArg() != 1 {
		log.Fatal("usage: overhead [-calls N] [-rounds N] TARGET")
	}
	client, err := pdp.NewClient(flag.Arg(0))
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()
	raw := pdpv1.NewPolicyDecisionServiceClient(client.Conn())
	input := "What is the capital of France?"
	request := pdp.EnforceRequest{AgentID: "my-chatbot", Input: &input}
	message := &pdpv1.EnforceRequest{AgentId: "my-chatbot", Input: &input}

	viaClient := func() {
		if _, err := client.Enforce(context.Background(), request); err != nil {
			log.Fatal(err)
		}
	}
	viaStub := func() {
		ctx, cancel := context.WithTimeout(context.Background(), pdp.DefaultTimeout)
		defer cancel()
		if _, err := raw.Enforce(ctx, message); err != nil {
			log.Fatal(err)
		}
	}
	round := func(call func()) []time.Duration {
		took := make([]time.Duration, *calls)
		for i := range took {
			started := time.Now()
			call()
			took[i] = time.Since(started)
		}
		return took
	}
	round(viaClient) // warm up the connection and both paths
	round(viaStub)
	var clientTimes, stubTimes []time.Duration
	for range *rounds {
		clientTimes = append(clientTimes, round(viaClient)...)
		stubTimes = append(stubTimes, round(viaStub)...)
	}
	clientMedian, stubMedian := median(clientTimes), median(stubTimes)
	fmt.Printf("go    client %8.1f µs  raw stub %8.1f µs  ratio %.3f  (median of %d sequential Enforce calls each)\n",
		micros(clientMedian), micros(stubMedian), float64(clientMedian)/float64(stubMedian), len(clientTimes))
}

func median(times []time.Duration) time.Duration {
	sorted := slices.Clone(times)
	slices.Sort(sorted)
	return sorted[len(sorted)/2]
}

func micros(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 }
