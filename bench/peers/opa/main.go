// Command opa-envoy serves Envoy's external authorization API
// (envoy.service.auth.v3.Authorization/Check) from a Rego policy with OPA's
// Go SDK, the way OPA's Envoy plugin does: the CheckRequest in its protobuf
// JSON form is the input, with parsed_path, parsed_query and (for a JSON
// body) parsed_body added, and the query's boolean answer is the decision.
// The plugin's own module is not served by the Go module proxy this
// project builds from, so the bench builds this equivalent of its hot path.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"net"
	"net/url"
	"os"
	"strings"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/util"
	"google.golang.org/genproto/googleapis/rpc/code"
	"google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/reflection"
	"google.golang.org/protobuf/encoding/protojson"
)

type server struct {
	authv3.UnimplementedAuthorizationServer
	query rego.PreparedEvalQuery
}

// input is what the plugin hands to Rego for a v3 CheckRequest.
func input(req *authv3.CheckRequest) (map[string]any, error) {
	raw, err := protojson.Marshal(req)
	if err != nil {
		return nil, err
	}
	var doc map[string]any
	if err := util.UnmarshalJSON(raw, &doc); err != nil {
		return nil, err
	}
	doc["version"] = map[string]string{"ext_authz": "v3", "encoding": "protojson"}
	http := req.GetAttributes().GetRequest().GetHttp()
	parsed, err := url.Parse(http.GetPath())
	if err != nil {
		return nil, err
	}
	segments := []any{}
	for _, s := range strings.Split(strings.TrimLeft(parsed.Path, "/"), "/") {
		segments = append(segments, s)
	}
	query := map[string]any{}
	for k, vs := range parsed.Query() {
		values := make([]any, len(vs))
		for i, v := range vs {
			values[i] = v
		}
		query[k] = values
	}
	doc["parsed_path"] = segments
	doc["parsed_query"] = query
	var body any
	if strings.HasPrefix(http.GetHeaders()["content-type"], "application/json") && http.GetBody() != "" {
		if err := util.UnmarshalJSON([]byte(http.GetBody()), &body); err != nil {
			return nil, err
		}
	}
	doc["parsed_body"] = body
	doc["truncated_body"] = false
	return doc, nil
}

func (s *server) Check(ctx context.Context, req *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	doc, err := input(req)
	if err != nil {
		return nil, err
	}
	value, err := ast.InterfaceToValue(doc)
	if err != nil {
		return nil, err
	}
	results, err := s.query.Eval(ctx, rego.EvalParsedInput(value))
	if err != nil {
		return nil, err
	}
	allowed := false
	if len(results) == 1 && len(results[0].Expressions) == 1 {
		allowed, _ = results[0].Expressions[0].Value.(bool)
	}
	answer := code.Code_PERMISSION_DENIED
	if allowed {
		answer = code.Code_OK
	}
	return &authv3.CheckResponse{Status: &status.Status{Code: int32(answer)}}, nil
}

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "gRPC listen address")
	policy := flag.String("policy", "", "Rego file")
	path := flag.String("query", "data.envoy.authz.allow", "decision query")
	flag.Parse()
	source, err := os.ReadFile(*policy)
	if err != nil {
		log.Fatal(err)
	}
	query, err := rego.New(
		rego.Query(*path),
		rego.Module(*policy, string(source)),
	).PrepareForEval(context.Background())
	if err != nil {
		log.Fatal(err)
	}
	listener, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	grpcServer := grpc.NewServer()
	authv3.RegisterAuthorizationServer(grpcServer, &server{query: query})
	reflection.Register(grpcServer)
	fmt.Fprintf(os.Stderr, "listening on %s\n", listener.Addr())
	log.Fatal(grpcServer.Serve(listener))
}
