// Command orca reads tokenwire's load the way gRPC's own load balancers do,
// through grpc-go's orca package: the per-call report each RPC's trailers
// carry (endpoint-load-metrics-bin) and the out-of-band stream
// (xds.service.orca.v3.OpenRcaService). A small balancer of its own picks the
// one server, registers an out-of-band listener on its connection and reads
// each finished call's report from the pick's Done callback, as a
// load-aware policy (weighted round robin) would.
//
// It makes one GetLoad call and one short generation, waits for two
// out-of-band reports, and prints one JSON line per report:
//
//	{"source":"per_call"|"out_of_band","cpu_utilization":...,"rps_fractional":...,
//	 "utilization":{...},"named_metrics":{...}}
//
// Run it with TOKENWIRE_TARGET=host:port (default 127.0.0.1:50051) and, for a
// server with TLS or tokens, the settings of the stream example.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"os"
	"time"

	v3orcapb "github.com/cncf/xds/go/xds/data/orca/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/balancer"
	"google.golang.org/grpc/balancer/base"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/orca"

	pb "github.com/tokenwire/tokenwire/clients/go/gen/tokenwire/v1"
	"github.com/tokenwire/tokenwire/clients/go/tokenwire"
)

const policy = "tokenwire_orca_example"

type report struct {
	source string
	load   *v3orcapb.OrcaLoadReport
}

func main() {
	log.SetFlags(0)
	log.SetPrefix("orca: ")

	reports := make(chan report, 64)
	balancer.Register(builder{reports: reports})
	config := fmt.Sprintf(`{"loadBalancingConfig": [{%q: {}}]}`, policy)
	options := append(tokenwire.ConnectOptionsFromEnv(),
		tokenwire.WithDialOptions(grpc.WithDefaultServiceConfig(config)))
	client, err := tokenwire.Connect("passthrough:///"+target(), options...)
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if _, err := client.Load(ctx); err != nil {
		log.Fatalf("GetLoad: %v", err)
	}
	// A stream's report arrives with its trailers: read it to the end (io.EOF).
	maxTokens := uint32(4)
	stream, err := client.GenerationService().Generate(ctx, &pb.GenerateRequest{
		Input:    &pb.GenerateRequest_Text{Text: "Name a colour."},
		Stopping: &pb.StoppingCriteria{MaxTokens: &maxTokens},
	})
	if err != nil {
		log.Fatalf("Generate: %v", err)
	}
	for {
		if _, err := stream.Recv(); err == io.EOF {
			break
		} else if err != nil {
			log.Fatalf("Generate: %v", err)
		}
	}

	perCall, outOfBand := 0, 0
	for perCall < 2 || outOfBand < 2 {
		select {
		case r := <-reports:
			if r.source == "per_call" {
				perCall++
			} else {
				outOfBand++
			}
			show(r)
		case <-ctx.Done():
			log.Fatalf("only %d per-call and %d out-of-band reports before the deadline", perCall, outOfBand)
		}
	}
}

func target() string {
	if t := os.Getenv("TOKENWIRE_TARGET"); t != "" {
		return t
	}
	return "127.0.0.1:50051"
}

func show(r report) {
	line, err := json.Marshal(map[string]any{
		"source":          r.source,
		"cpu_utilization": r.load.GetCpuUtilization(),
		"rps_fractional":  r.load.GetRpsFractional(),
		"utilization":     r.load.GetUtilization(),
		"named_metrics":   r.load.GetNamedMetrics(),
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(string(line))
}

// builder builds the example's balancer: one SubConn to the target's address.
type builder struct{ reports chan<- report }

func (b builder) Build(cc balancer.ClientConn, _ balancer.BuildOptions) balancer.Balancer {
	return &oneServer{cc: cc, reports: b.reports}
}

func (builder) Name() string { return policy }

type oneServer struct {
	cc      balancer.ClientConn
	reports chan<- report
	sc      balancer.SubConn
	stopOOB func()
}

func (b *oneServer) UpdateClientConnState(state balancer.ClientConnState) error {
	if b.sc != nil {
		return nil
	}
	addrs := state.ResolverState.Addresses
	if len(addrs) == 0 && len(state.ResolverState.Endpoints) > 0 {
		addrs = state.ResolverState.Endpoints[0].Addresses
	}
	if len(addrs) == 0 {
		return balancer.ErrBadResolverState
	}
	sc, err := b.cc.NewSubConn(addrs[:1], balancer.NewSubConnOptions{StateListener: b.subConnState})
	if err != nil {
		return err
	}
	b.sc = sc
	sc.Connect()
	return nil
}

func (b *oneServer) subConnState(state balancer.SubConnState) {
	switch state.ConnectivityState {
	case connectivity.Ready:
		if b.stopOOB == nil {
			// Once connected: the listener's stream runs on this SubConn. The server sends a
			// report at the interval asked for here (it allows 0.1 s to 60 s).
			b.stopOOB = orca.RegisterOOBListener(b.sc, listener{b.reports},
				orca.OOBListenerOptions{ReportInterval: 200 * time.Millisecond})
		}
		b.cc.UpdateState(balancer.State{ConnectivityState: connectivity.Ready, Picker: picker{b.sc, b.reports}})
	case connectivity.Idle:
		b.sc.Connect()
	case connectivity.TransientFailure:
		b.cc.UpdateState(balancer.State{
			ConnectivityState: connectivity.TransientFailure,
			Picker:            base.NewErrPicker(state.ConnectionError),
		})
	default:
		b.cc.UpdateState(balancer.State{
			ConnectivityState: state.ConnectivityState,
			Picker:            base.NewErrPicker(balancer.ErrNoSubConnAvailable),
		})
	}
}

func (b *oneServer) ResolverError(error) {}

func (b *oneServer) UpdateSubConnState(balancer.SubConn, balancer.SubConnState) {}

func (b *oneServer) ExitIdle() {}

func (b *oneServer) Close() {
	if b.stopOOB != nil {
		b.stopOOB()
	}
}

// picker sends every call to the one server and reads its per-call report when it ends.
type picker struct {
	sc      balancer.SubConn
	reports chan<- report
}

func (p picker) Pick(balancer.PickInfo) (balancer.PickResult, error) {
	return balancer.PickResult{SubConn: p.sc, Done: func(done balancer.DoneInfo) {
		// grpc-go's orca package parses the endpoint-load-metrics-bin trailer into ServerLoad.
		if load, ok := done.ServerLoad.(*v3orcapb.OrcaLoadReport); ok && load != nil {
			p.reports <- report{source: "per_call", load: load}
		}
	}}, nil
}

type listener struct{ reports chan<- report }

func (l listener) OnLoadReport(load *v3orcapb.OrcaLoadReport) {
	select {
	case l.reports <- report{source: "out_of_band", load: load}:
	default: // the example has read enough
	}
}
