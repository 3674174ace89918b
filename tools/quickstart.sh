#!/usr/bin/env bash
# BlockDriver quickstart, on a fresh Debian 12 machine with the .NET SDK, as root, from anywhere in the repository:
#
#   tools/quickstart.sh      (as root; or sudo tools/quickstart.sh)
#
# Installs the packages (those of .ci/run: docker.io and containerd among them), builds the blockdriver CLI, starts
# `blockdriver daemon --docker` on a store in $BLOCKDRIVER_QUICKSTART_DIR (default /var/lib/blockdriver-quickstart),
# starts a private dockerd whose storage driver is that plugin (its own data root, exec root and socket there; the
# host's docker, if any, is not touched), imports a busybox image built from /bin/busybox, runs a few containers
# that write data, prints `docker ps -s` and `blockdriver df`, builds a Dockerfile (FROM, COPY, RUN, CMD) with the
# classic builder and runs it, prints `docker history` of it next to `blockdriver layer ls`, then stops everything it
# started (also on failure or Ctrl+C) and checks that nothing is left mounted. The store and dockerd's data stay in
# the directory for a look (`blockdriver --root DIR/store layer ls`); delete the directory to forget them.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
base=${BLOCKDRIVER_QUICKSTART_DIR:-/var/lib/blockdriver-quickstart}
store=$base/store
plugin="blockdriver-quickstart"
plugin_socket=/run/docker/plugins/$plugin.sock
docker_dir=$base/docker
docker_socket=$docker_dir/docker.sock
docker=(/usr/bin/docker -H "unix://$docker_socket")
image=quickstart/busybox:1
built=quickstart/built:1
containers=3
daemon_pid=""
dockerd_pid=""

say() { printf '\n== %s\n' "$*"; }
die() {
  printf 'quickstart: %s\n' "$*" >&2
  exit 1
}

# Sends SIGTERM to a child we started and waits up to $2 seconds for it, then SIGKILL.
stop() {
  local pid=$1 seconds=$2 name=$3 i
  kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid"
  for ((i = 0; i < seconds * 10; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    echo "quickstart: $name did not stop in ${seconds}s: SIGKILL" >&2
    kill -KILL "$pid"
  fi
  wait "$pid" 2>/dev/null || true
}

cleanup() {
  local status=$? ids leftovers
  set +e
  trap - EXIT INT TERM
  say "Stopping what the quickstart started"
  if [[ -n $dockerd_pid ]] && kill -0 "$dockerd_pid" 2>/dev/null; then
    ids=$("${docker[@]}" ps -aq)
    if [[ -n $ids ]]; then
      # shellcheck disable=SC2086 # one argument per container id
      "${docker[@]}" rm -f $ids >/dev/null
    fi
    stop "$dockerd_pid" 60 dockerd
    echo "dockerd stopped"
  fi
  if [[ -n $daemon_pid ]]; then
    stop "$daemon_pid" 120 "the blockdriver daemon"
    echo "blockdriver daemon stopped (it unmounts every layer on SIGTERM)"
  fi
  leftovers=$(
    awk -v b="$base/" 'index($5, b) == 1 { print "mount: " $5 }' /proc/self/mountinfo
    losetup --list --noheadings --output NAME,BACK-FILE 2>/dev/null | awk -v b="$base/" 'index($2, b) == 1 { print "loop device: " $0 }'
    pgrep -a -f -- "$base/" | sed 's/^/process: /'
  )
  if [[ -n $leftovers ]]; then
    echo "quickstart: left behind:" >&2
    echo "$leftovers" >&2
    status=1
  else
    echo "nothing left mounted, no loop device, no process; logs and data in $base"
  fi
  exit "$status"
}

[[ $(id -u) -eq 0 ]] || die "run as root: it installs packages, runs dockerd and mounts layers (loop devices, FUSE)."
command -v dotnet >/dev/null || die "the .NET SDK is needed (dotnet on PATH)."
if [[ -e $plugin_socket ]] && pgrep -f -- "--Docker:Name=$plugin" >/dev/null; then
  die "another quickstart is running ($plugin_socket is served)."
fi

say "Installing packages (apt-get)"
export DEBIAN_FRONTEND=noninteractive DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
apt-get update -qq
# The packages .ci/run installs: docker.io, containerd and runc (dockerd 20.10, which still loads graphdriver plugins
# with --experimental), busybox-static (the image), e2fsprogs/util-linux/fuse3 (file systems, loop devices, FUSE), and
# the tools the rest of the test suite uses.
apt-get install -y -qq --no-install-recommends qemu-utils e2fsprogs util-linux python3-minimal libnbd-bin fuse3 nbdkit \
  fio busybox-static containerd runc docker.io >/dev/null
dockerd_bin=$(command -v dockerd || true)
[[ -x ${dockerd_bin:-} ]] || dockerd_bin=/usr/sbin/dockerd
[[ -x $dockerd_bin && -x /usr/bin/docker ]] || die "docker.io did not install dockerd and /usr/bin/docker."
"$dockerd_bin" --version

say "Building blockdriver (dotnet build -c Release)"
dotnet build "$repo/src/BlockDriver.Cli/BlockDriver.Cli.csproj" -c Release -nologo -v quiet
blockdriver=$repo/src/BlockDriver.Cli/bin/Release/net10.0/linux-x64/blockdriver
[[ -x $blockdriver ]] || die "the build did not produce $blockdriver."

trap cleanup EXIT
trap 'exit 130' INT TERM
mkdir -p "$base" "$docker_dir"

say "Starting the blockdriver daemon (store $store, plugin $plugin)"
"$blockdriver" --root "$store" daemon --docker "--Docker:Name=$plugin" >"$base/blockdriver.log" 2>&1 &
daemon_pid=$!
for ((i = 0; i < 600; i++)); do
  [[ -S $plugin_socket ]] && grep -q ' ready: ' "$base/blockdriver.log" && break
  kill -0 "$daemon_pid" 2>/dev/null || die "the blockdriver daemon exited: $(tail -n 20 "$base/blockdriver.log")"
  sleep 0.1
done
[[ -S $plugin_socket ]] || die "no plugin socket $plugin_socket after 60s: $(tail -n 20 "$base/blockdriver.log")"
echo "listening on $plugin_socket (log: $base/blockdriver.log)"

say "Starting dockerd on it (dockerd --experimental -s $plugin, socket $docker_socket)"
echo '{}' >"$docker_dir/daemon.json"
"$dockerd_bin" --experimental --storage-driver "$plugin" --config-file "$docker_dir/daemon.json" \
  --data-root "$docker_dir/data" --exec-root "$docker_dir/exec" --pidfile "$docker_dir/dockerd.pid" \
  --host "unix://$docker_socket" --iptables=false --ip-masq=false --bridge=none --userland-proxy=false \
  >"$base/dockerd.log" 2>&1 &
dockerd_pid=$!
for ((i = 0; i < 900; i++)); do
  "${docker[@]}" version >/dev/null 2>&1 && break
  kill -0 "$dockerd_pid" 2>/dev/null || die "dockerd exited: $(tail -n 20 "$base/dockerd.log")"
  sleep 0.1
done
"${docker[@]}" info --format '{{.Driver}}: {{range .DriverStatus}}{{index . 0}}={{index . 1}}; {{end}}'

say "Importing a busybox image ($image) built from /bin/busybox"
rootfs=$(mktemp -d)
mkdir -p "$rootfs/bin" "$rootfs/etc" "$rootfs/data" "$rootfs/tmp"
cp /bin/busybox "$rootfs/bin/busybox"
for applet in $(/bin/busybox --list); do
  [[ $applet == busybox ]] || ln -s busybox "$rootfs/bin/$applet"
done
echo 'root:x:0:0:root:/root:/bin/sh' >"$rootfs/etc/passwd"
echo 'hello from the image' >"$rootfs/data/hello.txt"
tar -C "$rootfs" -cf "$base/busybox.tar" .
rm -rf "$rootfs"
"${docker[@]}" import "$base/busybox.tar" "$image"

say "Running $containers containers that write 8, 16, 24 MiB"
for ((i = 1; i <= containers; i++)); do
  "${docker[@]}" rm -f "quickstart-$i" >/dev/null 2>&1 || true
  "${docker[@]}" run -d --name "quickstart-$i" "$image" sh -c \
    "dd if=/dev/urandom of=/data/blob bs=1M count=$((i * 8)) 2>/dev/null && echo container $i > /data/mine.txt && sync && touch /ready && exec sleep 3600" >/dev/null
done
for ((i = 1; i <= containers; i++)); do
  for ((try = 0; try < 600; try++)); do
    "${docker[@]}" exec "quickstart-$i" test -e /ready 2>/dev/null && break
    sleep 0.2
  done
  echo "quickstart-$i: $("${docker[@]}" exec "quickstart-$i" cat /data/mine.txt /data/hello.txt | paste -sd ' ')"
done

say "docker ps -s"
"${docker[@]}" ps -s
say "docker system df"
"${docker[@]}" system df
say "blockdriver df (the same containers, as the store sees them: size = bytes the layer's file holds)"
"$blockdriver" --root "$store" df

# A Dockerfile of the usual shape (FROM, COPY, RUN, CMD), on the busybox image so the main job stays quick (a Debian
# image would need debootstrap first): the classic builder runs RUN in a container and commits it, which streams the
# container's Diff from the plugin into a new layer's ApplyDiff; CMD commits an empty layer the same way.
say "docker build of a Dockerfile (FROM $image, COPY, RUN, CMD) on the plugin, classic builder, no network"
context=$base/build-context
rm -rf "$context"
mkdir -p "$context"
cat >"$context/Dockerfile" <<DOCKERFILE
FROM $image
COPY . /app
RUN sh /app/build.sh
CMD ["cat", "/app/out/greeting"]
DOCKERFILE
cat >"$context/build.sh" <<'BUILD'
set -e
mkdir -p /app/out
echo "hello from a Dockerfile built on blockdriver (made by RUN at $(date -u +%H:%M:%S) on $(uname -m))" >/app/out/greeting
dd if=/dev/urandom of=/app/out/data bs=64k count=64 2>/dev/null # 4 MiB: a layer docker history shows
BUILD
DOCKER_BUILDKIT=0 "${docker[@]}" build --network none -t "$built" "$context"
say "docker run --rm $built"
"${docker[@]}" run --rm "$built"
say "docker history $built (each layer dockerd made is a sealed layer of the store, below)"
"${docker[@]}" history "$built"
say "blockdriver layer ls (the store's layers: the base file system, the image's, the build's)"
"$blockdriver" --root "$store" layer ls
