// Package suite runs containerd's own snapshotter conformance suite (snapshots/testsuite, Debian's
// golang-github-containerd-containerd-dev 1.6, unmodified) against blockdriver's containerd snapshotter, dialled
// through snapshots/proxy exactly as containerd dials a [proxy_plugins] snapshotter. Every subtest gets a fresh
// `blockdriver daemon --containerd-socket` on a fresh store in the suite's temp root, stopped with SIGTERM by the
// subtest's cleanup.
//
// Built in GOPATH mode (no module proxy): GO111MODULE=off CGO_ENABLED=0 GOPATH=$TMP:/usr/share/gocode go test -c. Needs root (the
// suite mounts). The daemon is `$BLOCKDRIVER_DOTNET $BLOCKDRIVER_CLI` (dotnet and blockdriver.dll); the xunit test
// ContainerdSuiteTests in the parent folder sets both and runs each subtest on its own.
package suite

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	snapshotsapi "github.com/containerd/containerd/api/services/snapshots/v1"
	"github.com/containerd/containerd/log"
	"github.com/containerd/containerd/pkg/dialer"
	"github.com/containerd/containerd/snapshots"
	"github.com/containerd/containerd/snapshots/proxy"
	"github.com/containerd/containerd/snapshots/testsuite"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
)

const (
	// The virtual size of every snapshot (the store's base ext4): small, so that mkfs is quick.
	capacity = 1 << 30
	// The proxy plugin's name, as in containerd's [proxy_plugins.blockdriver].
	snapshotterName = "blockdriver"
	readyTimeout    = 90 * time.Second
	stopTimeout     = 60 * time.Second
)

func TestBlockdriverSnapshotter(t *testing.T) {
	if os.Getuid() != 0 {
		t.Fatal("the snapshotter suite mounts file systems: run it as root")
	}
	dotnet, cli := os.Getenv("BLOCKDRIVER_DOTNET"), os.Getenv("BLOCKDRIVER_CLI")
	if dotnet == "" || cli == "" {
		t.Fatal("set BLOCKDRIVER_DOTNET (the dotnet host) and BLOCKDRIVER_CLI (blockdriver.dll)")
	}
	testsuite.SnapshotterSuite(t, "Blockdriver", func(ctx context.Context, root string) (snapshots.Snapshotter, func() error, error) {
		return startSnapshotter(ctx, dotnet, cli, root)
	})
}

// startSnapshotter starts a daemon on a new store under root, waits until it is ready, and dials its socket as
// containerd does (services/server/server.go, proxyClients.getClient).
func startSnapshotter(ctx context.Context, dotnet, cli, root string) (snapshots.Snapshotter, func() error, error) {
	store := filepath.Join(root, "store")
	socket := filepath.Join(root, "snapshotter.sock")
	cmd := exec.Command(dotnet, cli, "--root", store, "daemon", "--containerd-socket", socket,
		fmt.Sprintf("--Containerd:Capacity=%d", capacity))
	cmd.Stdin = nil
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, nil, err
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		return nil, nil, fmt.Errorf("starting %s %s: %w", dotnet, cli, err)
	}
	exited := make(chan error, 1)
	ready := make(chan struct{})
	go func() {
		// The daemon's output goes to the test's log (logtest: shown with -test.v or on failure).
		scanner := bufio.NewScanner(out)
		signalled := false
		for scanner.Scan() {
			line := scanner.Text()
			log.G(ctx).WithField("daemon", cmd.Process.Pid).Info(line)
			if !signalled && strings.Contains(line, " ready: ") {
				signalled = true
				close(ready)
			}
		}
		exited <- cmd.Wait()
	}()

	stop := func() error {
		if err := cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
			return fmt.Errorf("SIGTERM to the daemon: %w", err)
		}
		select {
		case err := <-exited:
			if err != nil {
				return fmt.Errorf("the daemon did not exit cleanly after SIGTERM: %w", err)
			}
			return nil
		case <-time.After(stopTimeout):
			_ = cmd.Process.Kill()
			<-exited
			return fmt.Errorf("the daemon did not exit within %s of SIGTERM; killed", stopTimeout)
		}
	}

	select {
	case <-ready:
	case err := <-exited:
		return nil, nil, fmt.Errorf("the daemon exited before it was ready: %v", err)
	case <-time.After(readyTimeout):
		return nil, nil, fmt.Errorf("the daemon was not ready within %s; stopping it: %v", readyTimeout, stop())
	}

	backoffConfig := backoff.DefaultConfig
	backoffConfig.MaxDelay = 3 * time.Second
	conn, err := grpc.Dial(dialer.DialAddress(socket),
		grpc.WithInsecure(),
		grpc.WithConnectParams(grpc.ConnectParams{Backoff: backoffConfig}),
		grpc.WithContextDialer(dialer.ContextDialer))
	if err != nil {
		return nil, nil, fmt.Errorf("dialling %s: %w (stopping the daemon: %v)", socket, err, stop())
	}
	sn := proxy.NewSnapshotter(snapshotsapi.NewSnapshotsClient(conn), snapshotterName)
	cleanup := func() error {
		closeErr := conn.Close()
		if err := stop(); err != nil {
			return err
		}
		return closeErr
	}
	return sn, cleanup, nil
}
