#!/usr/bin/env bash
# scripts/services.sh — the real services Talos's integration tests talk to.
#
#   scripts/services.sh up       install what is missing, start everything, wait until ready
#   scripts/services.sh down     stop what `up` started (by PID file only)
#   scripts/services.sh env      print `export` lines for the tests (eval or source them)
#   scripts/services.sh status   say what is running; exit 0 only if Redis, PostgreSQL, Docker and Chroma are
#   scripts/services.sh python-image   only build (or re-import from its cache) talos-test/python:1
#   scripts/services.sh browser-image  only build (or re-import from its cache) talos-test/browser:1
#
# Everything runs on loopback, on private ports, under one private folder
# (TALOS_SERVICES_DIR, default /tmp/talos-services):
#
#   Redis       127.0.0.1:56379   redis-server, no persistence
#   PostgreSQL  127.0.0.1:55432   trust auth, fsync off, runs as the postgres user
#   Docker      unix://DIR/docker.sock   a private dockerd (own data-root, exec-root, containerd)
#   Chroma      127.0.0.1:58000   chromadb@3.5.0's Rust server, run by Node on a private glibc
#
# plus the image talos-test/busybox:1, imported from /usr/bin/busybox (no registry is reachable),
# and talos-test/python:1 for the skill sandbox: a Debian bookworm minbase rootfs with python3-minimal
# made by debootstrap from the machine's own Debian mirror, imported with `docker import`. Its rootfs
# tarball is cached in DIR/tools/python-image (minutes the first time, seconds afterwards).
# and the reference MCP servers @modelcontextprotocol/server-everything and server-filesystem
# (npm, pinned) in DIR/tools/mcp, run by the tests over stdio (never with npx, so nothing is
# fetched at run time), and Debian's chromium for the dashboard's headless browser tests (installed
# only; each test starts its own browser).
# Downloads (the npm install, the trixie libc6 package) are cached in DIR/tools, so a second
# `up` only starts processes.
# `up` is idempotent: whatever already runs and answers is left alone. `up` and `down` need root
# (apt-get, dockerd, runuser postgres).
set -euo pipefail

DIR="${TALOS_SERVICES_DIR:-/tmp/talos-services}"
REDIS_PORT="${TALOS_SERVICES_REDIS_PORT:-56379}"
PG_PORT="${TALOS_SERVICES_POSTGRES_PORT:-55432}"
CHROMA_PORT="${TALOS_SERVICES_CHROMA_PORT:-58000}"
OLLAMA_PORT="${TALOS_SERVICES_OLLAMA_PORT:-51434}"
OLLAMA_VERSION=0.6.5
OLLAMA_MODEL=tiny
CHROMA_VERSION="3.5.0"
MCP_SERVERS_VERSION="2026.8.31"
BUSYBOX_IMAGE="talos-test/busybox:1"
PYTHON_IMAGE="talos-test/python:1"
BROWSER_IMAGE="talos-test/browser:1"
READY_TIMEOUT="${TALOS_SERVICES_TIMEOUT:-90}" # seconds per service

DOCKER_SOCK="$DIR/docker.sock"
TOOLS="$DIR/tools"
export DEBIAN_FRONTEND=noninteractive

log() { printf 'services: %s\n' "$*" >&2; }

# since T0: seconds (one decimal) since T0, a value of $EPOCHREALTIME.
since() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1fs", b - a }'; }

# fail MESSAGE [LOGFILE]: say what went wrong, show the log's tail, exit non-zero.
fail() {
	printf '\nservices: ERROR: %s\n' "$1" >&2
	if [[ -n "${2:-}" && -f "$2" ]]; then
		printf 'services: last lines of %s:\n' "$2" >&2
		tail -n 40 "$2" | sed 's/^/    /' >&2
	fi
	exit 1
}

need_root() {
	[[ $EUID -eq 0 ]] || fail "'$1' needs root (apt-get, dockerd and the postgres user); run it with sudo or as root"
}

# pid_alive PIDFILE PATTERN: the PID in PIDFILE is running and its command line contains
# PATTERN (so a recycled PID of some other program is never taken for ours).
pid_alive() {
	local pid
	[[ -s "$1" ]] || return 1
	pid=$(head -n1 "$1" | tr -dc '0-9')
	[[ -n "$pid" && -r "/proc/$pid/cmdline" ]] || return 1
	{ tr '\0' ' ' <"/proc/$pid/cmdline"; } 2>/dev/null | grep -qF -- "$2"
}

pid_of() { head -n1 "$1" | tr -dc '0-9'; }

# stop_pid PIDFILE PATTERN GRACE: SIGTERM, wait GRACE seconds, then SIGKILL.
stop_pid() {
	local pidfile=$1 pattern=$2 grace=$3 pid i
	if ! pid_alive "$pidfile" "$pattern"; then
		rm -f "$pidfile"
		return 0
	fi
	pid=$(pid_of "$pidfile")
	kill -TERM "$pid" 2>/dev/null || true
	for ((i = 0; i < grace * 10; i++)); do
		[[ -d "/proc/$pid" ]] || break
		sleep 0.1
	done
	if [[ -d "/proc/$pid" ]]; then
		log "PID $pid ($pattern) still running after ${grace}s: SIGKILL"
		kill -KILL "$pid" 2>/dev/null || true
		for ((i = 0; i < 50; i++)); do
			[[ -d "/proc/$pid" ]] || break
			sleep 0.1
		done
	fi
	rm -f "$pidfile"
}

# port_open PORT: something accepts TCP connections on 127.0.0.1:PORT.
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# need_free_port PORT VAR: fail unless PORT is free within 5 s (a server this script
# stopped a moment ago, or its child, may still hold it); VAR is the variable that moves it.
need_free_port() {
	local i
	for ((i = 0; i < 50; i++)); do
		port_open "$1" || return 0
		sleep 0.1
	done
	fail "port $1 is in use by a process this script did not start; stop it or set $2"
}

# wait_for NAME LOGFILE PIDFILE PATTERN CMD...: run CMD until it succeeds, the process dies,
# or READY_TIMEOUT passes.
wait_for() {
	local name=$1 logfile=$2 pidfile=$3 pattern=$4 start=$SECONDS deadline
	shift 4
	deadline=$((start + READY_TIMEOUT))
	until "$@" >/dev/null 2>&1; do
		if ((SECONDS >= deadline)); then
			fail "$name did not become ready within ${READY_TIMEOUT}s" "$logfile"
		fi
		# (after a grace period: the PID file is written by the process itself)
		if [[ -n "$pidfile" ]] && ((SECONDS - start > 5)) && ! pid_alive "$pidfile" "$pattern"; then
			fail "$name exited while starting" "$logfile"
		fi
		sleep 0.1
	done
}

pg_bin() {
	local d
	d=$(find /usr/lib/postgresql -mindepth 2 -maxdepth 2 -name bin -type d 2>/dev/null | sort -V | tail -n1)
	[[ -n "$d" ]] || return 1
	printf '%s\n' "$d"
}

# ---------------------------------------------------------------------------------------------
# install

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }

install_packages() {
	local need=() p
	for p in redis-server docker.io busybox-static curl chromium; do
		installed "$p" || need+=("$p")
	done
	[[ -x /usr/lib/postgresql/15/bin/initdb ]] || pg_bin >/dev/null || need+=(postgresql)
	command -v node >/dev/null && command -v npm >/dev/null || need+=(nodejs npm)
	if ((${#need[@]} == 0)); then
		return 0
	fi
	log "installing ${need[*]} (apt-get; this takes a minute or two the first time)"
	local apt=(-o DPkg::Lock::Timeout=600 -q)
	apt-get "${apt[@]}" update >"$DIR/apt.log" 2>&1 || fail "apt-get update failed" "$DIR/apt.log"
	# /usr/sbin/policy-rc.d (exit 101) in this image keeps the packages from starting their
	# own system-wide daemons; we start private ones below.
	apt-get "${apt[@]}" install -y --no-install-recommends "${need[@]}" >>"$DIR/apt.log" 2>&1 ||
		fail "apt-get install ${need[*]} failed" "$DIR/apt.log"
}

# Chroma's server ships inside chromadb-js-bindings-linux-x64-gnu and needs glibc >= 2.39:
# Debian 13's libc6 is unpacked into TOOLS/glibc (the system's libc is not touched).
install_chroma() {
	local t=$TOOLS cur=""
	mkdir -p "$t/chroma"
	if [[ -f "$t/chroma/node_modules/chromadb/package.json" ]]; then
		cur=$(node -p "require('$t/chroma/node_modules/chromadb/package.json').version" 2>/dev/null || true)
	fi
	if [[ "$cur" != "$CHROMA_VERSION" || ! -f "$t/chroma/node_modules/chromadb-js-bindings-linux-x64-gnu/package.json" ]]; then
		log "installing chromadb@$CHROMA_VERSION from npm into $t/chroma"
		(
			cd "$t/chroma"
			[[ -f package.json ]] || npm init -y >/dev/null
			npm install --no-audit --no-fund --loglevel=error "chromadb@$CHROMA_VERSION"
		) >"$t/npm.log" 2>&1 || fail "npm install chromadb@$CHROMA_VERSION failed" "$t/npm.log"
	fi
	cat >"$t/chroma/run-chroma.mjs" <<'JS'
// Starts Chroma's bundled server; unlike the stock `chroma` command it exits on SIGINT/SIGTERM.
import { createRequire } from "module";
const b = createRequire(import.meta.url)("chromadb-js-bindings-linux-x64-gnu");
for (const s of ["SIGINT", "SIGTERM"]) process.on(s, () => process.exit(0));
b.cli(["chroma", ...process.argv.slice(2)]);
JS

	if [[ ! -x "$t/glibc/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2" ]]; then
		log "fetching Debian 13 (trixie) libc6 into $t/glibc (private; the system libc is untouched)"
		local uri
		uri=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
		uri=${uri:-http://deb.debian.org/debian}
		mkdir -p "$t/apt/lists/partial" "$t/apt/cache/archives/partial" "$t/glibc"
		echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $uri trixie main" >"$t/apt/sources.list"
		local apt=(-o "Dir::Etc::SourceList=$t/apt/sources.list" -o Dir::Etc::SourceParts=/nonexistent
			-o "Dir::State::Lists=$t/apt/lists" -o "Dir::Cache=$t/apt/cache" -o Acquire::Languages=none)
		rm -f "$t"/apt/libc6_*.deb
		{
			apt-get "${apt[@]}" update -qq &&
				(cd "$t/apt" && apt-get "${apt[@]}" download libc6)
		} >"$t/glibc.log" 2>&1 || fail "downloading trixie's libc6 failed" "$t/glibc.log"
		local deb
		deb=$(find "$t/apt" -maxdepth 1 -name 'libc6_*_amd64.deb' | head -n1)
		[[ -n "$deb" ]] || fail "no libc6_*_amd64.deb in $t/apt after download" "$t/glibc.log"
		dpkg-deb -x "$deb" "$t/glibc" || fail "could not unpack $deb"
	fi
}

# The reference MCP servers the mcphost integration tests run over stdio, at pinned versions.
mcp_everything_bin() { printf '%s\n' "$TOOLS/mcp/node_modules/.bin/mcp-server-everything"; }
mcp_filesystem_bin() { printf '%s\n' "$TOOLS/mcp/node_modules/.bin/mcp-server-filesystem"; }

# mcp_installed PKG: PKG is installed in TOOLS/mcp at MCP_SERVERS_VERSION.
mcp_installed() {
	local f=$TOOLS/mcp/node_modules/$1/package.json
	[[ -f "$f" ]] && [[ "$(node -p "require('$f').version" 2>/dev/null)" == "$MCP_SERVERS_VERSION" ]]
}

install_mcp() {
	local t=$TOOLS/mcp p need=()
	mkdir -p "$t"
	for p in @modelcontextprotocol/server-everything @modelcontextprotocol/server-filesystem; do
		mcp_installed "$p" || need+=("$p@$MCP_SERVERS_VERSION")
	done
	if ((${#need[@]} == 0)) && [[ -x "$(mcp_everything_bin)" && -x "$(mcp_filesystem_bin)" ]]; then
		return 0
	fi
	log "installing ${need[*]:-the MCP servers (links missing)} from npm into $t"
	(
		cd "$t"
		[[ -f package.json ]] || npm init -y >/dev/null
		npm install --no-audit --no-fund --save-exact --loglevel=error \
			"@modelcontextprotocol/server-everything@$MCP_SERVERS_VERSION" \
			"@modelcontextprotocol/server-filesystem@$MCP_SERVERS_VERSION"
	) >"$t/npm.log" 2>&1 || fail "npm install of the MCP servers failed" "$t/npm.log"
}

# ---------------------------------------------------------------------------------------------
# start

redis_ping() { [[ "$(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null)" == PONG ]]; }

start_redis() {
	local t0=$EPOCHREALTIME
	local d=$DIR/redis
	mkdir -p "$d"
	if pid_alive "$d/redis.pid" redis-server && redis_ping; then
		log "redis      already running  127.0.0.1:$REDIS_PORT (pid $(pid_of "$d/redis.pid"))"
		return 0
	fi
	need_free_port "$REDIS_PORT" TALOS_SERVICES_REDIS_PORT
	rm -f "$d/redis.pid"
	# Configured as Talos expects its Redis (spec §1.3 S4: 512mb, allkeys-lru), so a daemon pointed
	# at it boots healthy; the daemon only checks the policy, it never changes a server it shares.
	redis-server --daemonize yes --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no \
		--maxmemory 512mb --maxmemory-policy allkeys-lru \
		--dir "$d" --pidfile "$d/redis.pid" --logfile "$d/redis.log" </dev/null >/dev/null 2>&1 ||
		fail "redis-server did not start" "$d/redis.log"
	wait_for redis "$d/redis.log" "$d/redis.pid" redis-server redis_ping
	log "redis      started          127.0.0.1:$REDIS_PORT (pid $(pid_of "$d/redis.pid")) in $(since "$t0")"
}

pg_ready() { pg_isready -q -h 127.0.0.1 -p "$PG_PORT" -U postgres; }

start_postgres() {
	local t0=$EPOCHREALTIME
	local d=$DIR/postgres bin
	bin=$(pg_bin) || fail "PostgreSQL is not installed (/usr/lib/postgresql/*/bin missing)"
	mkdir -p "$d"
	chown postgres:postgres "$d"
	if runuser -u postgres -- "$bin/pg_ctl" -D "$d/data" status >/dev/null 2>&1 && pg_ready; then
		log "postgres   already running  127.0.0.1:$PG_PORT"
		return 0
	fi
	need_free_port "$PG_PORT" TALOS_SERVICES_POSTGRES_PORT
	if [[ ! -f "$d/data/PG_VERSION" ]]; then
		rm -rf "$d/data"
		runuser -u postgres -- "$bin/initdb" -D "$d/data" -U postgres --auth=trust -E UTF8 \
			>"$d/initdb.log" 2>&1 || fail "initdb failed" "$d/initdb.log"
	fi
	runuser -u postgres -- "$bin/pg_ctl" -D "$d/data" -w -t "$READY_TIMEOUT" -l "$d/postgres.log" \
		-o "-p $PG_PORT -k $d -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
		start </dev/null >"$d/pg_ctl.log" 2>&1 || {
		cat "$d/pg_ctl.log" >&2
		fail "PostgreSQL did not start" "$d/postgres.log"
	}
	wait_for postgres "$d/postgres.log" "" "" pg_ready
	log "postgres   started          127.0.0.1:$PG_PORT in $(since "$t0")"
}

docker_cli() { DOCKER_HOST="unix://$DOCKER_SOCK" docker "$@"; }
docker_ready() { docker_cli version >/dev/null 2>&1; }

start_docker() {
	local t0=$EPOCHREALTIME
	local d=$DIR/docker
	mkdir -p "$d/data" "$d/exec"
	if pid_alive "$d/dockerd.pid" dockerd && docker_ready; then
		log "docker     already running  unix://$DOCKER_SOCK (pid $(pid_of "$d/dockerd.pid"))"
	else
		if pid_alive "$d/dockerd.pid" dockerd; then
			# Ours but not answering: restart it.
			stop_pid "$d/dockerd.pid" dockerd 20
		fi
		rm -f "$d/dockerd.pid" "$DOCKER_SOCK"
		[[ -f "$d/daemon.json" ]] || echo '{}' >"$d/daemon.json"
		# setsid: the engine survives the terminal or make that started it.
		setsid dockerd --config-file "$d/daemon.json" --data-root "$d/data" --exec-root "$d/exec" \
			-H "unix://$DOCKER_SOCK" --pidfile "$d/dockerd.pid" </dev/null >"$d/dockerd.log" 2>&1 &
		wait_for docker "$d/dockerd.log" "$d/dockerd.pid" dockerd docker_ready
		log "docker     started          unix://$DOCKER_SOCK (pid $(pid_of "$d/dockerd.pid")) in $(since "$t0")"
	fi

	if ! docker_cli image inspect "$BUSYBOX_IMAGE" >/dev/null 2>&1; then
		local r=$DIR/images/busybox a
		rm -rf "$r"
		mkdir -p "$r/bin" "$r/etc" "$r/tmp" "$r/proc" "$r/sys" "$r/dev" "$r/root"
		cp /usr/bin/busybox "$r/bin/busybox"
		for a in $(/usr/bin/busybox --list); do
			[[ "$a" == busybox ]] || ln -sf busybox "$r/bin/$a"
		done
		chmod 1777 "$r/tmp"
		tar -C "$r" -c . | docker_cli import --change 'CMD ["/bin/sh"]' - "$BUSYBOX_IMAGE" >"$d/import.log" 2>&1 ||
			fail "docker import of $BUSYBOX_IMAGE failed" "$d/import.log"
		log "docker     imported image   $BUSYBOX_IMAGE in $(since "$t0")"
	fi
	# A container must really run (runc, cgroups, mounts), not only the API answer.
	local out
	out=$(docker_cli run --rm --network none --read-only "$BUSYBOX_IMAGE" sh -c 'echo ok' 2>&1) ||
		fail "a test container did not run: $out" "$d/dockerd.log"
	[[ "$out" == ok ]] || fail "test container printed '$out' instead of 'ok'" "$d/dockerd.log"
}

# debootstrap, installed from Debian when missing (the two images' rootfs are made with it).
ensure_debootstrap() {
	installed debootstrap && return 0
	apt-get -o DPkg::Lock::Timeout=600 -q install -y --no-install-recommends debootstrap >>"$DIR/apt.log" 2>&1 ||
		fail "apt-get install debootstrap failed" "$DIR/apt.log"
}

# The Debian mirror apt already uses (deb822 sources first, then sources.list).
debian_mirror() {
	local mirror
	mirror=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
	[[ -n "$mirror" ]] || mirror=$(awk '$1=="deb"{print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
	echo "${mirror:-http://deb.debian.org/debian}"
}

# The skill sandbox's Python image. No registry is reachable, so the rootfs is made by
# debootstrap (minbase + python3-minimal) from the Debian mirror apt already uses, packed into
# TOOLS/python-image/rootfs.tar once (kept between runs on this machine) and imported from there.
# Idempotent: nothing happens when the image exists; only the import when the tarball does.
build_python_image() {
	local t0=$EPOCHREALTIME d=$TOOLS/python-image
	docker_ready || fail "the Docker engine at unix://$DOCKER_SOCK is not running: run '$0 up' first"
	if docker_cli image inspect "$PYTHON_IMAGE" >/dev/null 2>&1; then
		log "python     image present    $PYTHON_IMAGE"
		return 0
	fi
	mkdir -p "$d"
	if [[ ! -s "$d/rootfs.tar" ]]; then
		ensure_debootstrap
		local mirror
		mirror=$(debian_mirror)
		log "python     debootstrap bookworm (minbase + python3-minimal) from $mirror; takes minutes once"
		rm -rf "$d/root" "$d/rootfs.tar.tmp"
		debootstrap --variant=minbase --include=python3-minimal bookworm "$d/root" "$mirror" >"$d/debootstrap.log" 2>&1 ||
			fail "debootstrap failed (is the Debian mirror $mirror reachable?)" "$d/debootstrap.log"
		rm -rf "$d/root/var/cache/apt/archives/"*.deb "$d/root/var/lib/apt/lists/"* "$d/root/usr/share/doc" "$d/root/usr/share/man"
		"$d/root/usr/bin/python3" -c 'pass' 2>/dev/null || chroot "$d/root" /usr/bin/python3 -c 'pass' ||
			fail "the debootstrapped rootfs has no working python3" "$d/debootstrap.log"
		tar --numeric-owner -C "$d/root" -cf "$d/rootfs.tar.tmp" . || fail "cannot pack the python rootfs"
		mv "$d/rootfs.tar.tmp" "$d/rootfs.tar"
		rm -rf "$d/root"
	fi
	docker_cli import --change 'CMD ["/usr/bin/python3"]' "$d/rootfs.tar" "$PYTHON_IMAGE" >"$d/import.log" 2>&1 ||
		fail "docker import of $PYTHON_IMAGE failed" "$d/import.log"
	local out
	out=$(docker_cli run --rm --network none --read-only --user 65534:65534 "$PYTHON_IMAGE" \
		python3 -I -S -c 'print("ok")' 2>&1) || fail "a python test container did not run: $out" "$DIR/docker/dockerd.log"
	[[ "$out" == ok ]] || fail "python test container printed '$out' instead of 'ok'"
	log "python     imported image   $PYTHON_IMAGE in $(since "$t0")"
}

# The browser_automation skill's image: Debian bookworm minbase plus Debian's chromium (from
# bookworm-security, as the host installs it), fonts and socat, installed with apt inside the
# debootstrapped chroot; no registry. Packed into TOOLS/browser-image/rootfs.tar once (minutes,
# about 500 MB) and imported from there afterwards. Chromium's DevTools listens on 127.0.0.1:9222
# inside the container only; socat publishes it on port 9223 of the container's address.
build_browser_image() {
	local t0=$EPOCHREALTIME d=$TOOLS/browser-image
	docker_ready || fail "the Docker engine at unix://$DOCKER_SOCK is not running: run '$0 up' first"
	if docker_cli image inspect "$BROWSER_IMAGE" >/dev/null 2>&1; then
		log "browser    image present    $BROWSER_IMAGE"
		return 0
	fi
	mkdir -p "$d"
	if [[ ! -s "$d/rootfs.tar" ]]; then
		ensure_debootstrap
		local mirror security
		mirror=$(debian_mirror)
		security=${mirror%/debian}/debian-security
		log "browser    debootstrap bookworm + apt install chromium from $mirror; takes minutes once"
		rm -rf "$d/root" "$d/rootfs.tar.tmp"
		debootstrap --variant=minbase bookworm "$d/root" "$mirror" >"$d/debootstrap.log" 2>&1 ||
			fail "debootstrap failed (is the Debian mirror $mirror reachable?)" "$d/debootstrap.log"
		printf 'deb %s bookworm main\ndeb %s bookworm-updates main\ndeb %s bookworm-security main\n' \
			"$mirror" "$mirror" "$security" >"$d/root/etc/apt/sources.list"
		cp /etc/resolv.conf "$d/root/etc/resolv.conf"
		{
			chroot "$d/root" apt-get -q update &&
				DEBIAN_FRONTEND=noninteractive chroot "$d/root" apt-get -q install -y --no-install-recommends \
					chromium fonts-dejavu-core socat
		} >"$d/apt.log" 2>&1 || fail "apt-get install chromium in the chroot failed" "$d/apt.log"
		rm -rf "$d/root/var/cache/apt/archives/"*.deb "$d/root/var/lib/apt/lists/"* "$d/root/usr/share/doc" "$d/root/usr/share/man"
		: >"$d/root/etc/resolv.conf"
		chroot "$d/root" /usr/lib/chromium/chromium --version >"$d/version.log" 2>&1 ||
			fail "the chroot's chromium does not run" "$d/version.log"
		tar --numeric-owner -C "$d/root" -cf "$d/rootfs.tar.tmp" . || fail "cannot pack the browser rootfs"
		mv "$d/rootfs.tar.tmp" "$d/rootfs.tar"
		rm -rf "$d/root"
	fi
	docker_cli import --change 'USER 65534:65534' --change 'ENV HOME=/tmp' "$d/rootfs.tar" "$BROWSER_IMAGE" >"$d/import.log" 2>&1 ||
		fail "docker import of $BROWSER_IMAGE failed" "$d/import.log"
	local out
	out=$(docker_cli run --rm --network none --read-only --tmpfs /tmp "$BROWSER_IMAGE" \
		/usr/lib/chromium/chromium --version 2>&1) || fail "a browser test container did not run: $out" "$DIR/docker/dockerd.log"
	[[ "$out" == Chromium* ]] || fail "the browser test container printed '$out' instead of a Chromium version"
	log "browser    imported image   $BROWSER_IMAGE ($out) in $(since "$t0")"
}

chroma_ready() { curl -fsS -m 2 "http://127.0.0.1:$CHROMA_PORT/api/v2/heartbeat" >/dev/null; }

start_chroma() {
	local t0=$EPOCHREALTIME
	local d=$DIR/chroma gl=$TOOLS/glibc/usr/lib/x86_64-linux-gnu node_bin
	mkdir -p "$d/data"
	if pid_alive "$d/chroma.pid" run-chroma.mjs && chroma_ready; then
		log "chroma     already running  127.0.0.1:$CHROMA_PORT (pid $(pid_of "$d/chroma.pid"))"
		return 0
	fi
	stop_pid "$d/chroma.pid" run-chroma.mjs 5
	need_free_port "$CHROMA_PORT" TALOS_SERVICES_CHROMA_PORT
	install_chroma
	node_bin=$(command -v node)
	(
		cd "$TOOLS/chroma"
		# bash writes its own PID, then execs the loader (which runs node in the same process),
		# so the PID file names the server itself.
		# shellcheck disable=SC2016 # expanded by the inner bash
		setsid bash -c 'echo $$ >"$0"; exec "$@"' "$d/chroma.pid" \
			"$gl/ld-linux-x86-64.so.2" --library-path "$gl:/usr/lib/x86_64-linux-gnu:/lib/x86_64-linux-gnu" \
			"$node_bin" run-chroma.mjs run --path "$d/data" --host 127.0.0.1 --port "$CHROMA_PORT" \
			</dev/null >"$d/chroma.log" 2>&1 &
	)
	wait_for chroma "$d/chroma.log" "$d/chroma.pid" run-chroma.mjs chroma_ready
	log "chroma     started          127.0.0.1:$CHROMA_PORT (pid $(pid_of "$d/chroma.pid")) in $(since "$t0")"
}

# ---------------------------------------------------------------------------------------------
# stop

stop_docker() {
	local d=$DIR/docker pid
	# dockerd stops its containers and its own containerd on SIGTERM.
	stop_pid "$d/dockerd.pid" dockerd 30
	stop_pid "$d/exec/containerd/containerd.pid" containerd 10
	# Shims of containers that were still running are children of nobody now; they name our
	# exec-root on their command line.
	grep -lsF -- "$d/exec/containerd" /proc/[0-9]*/cmdline | cut -d/ -f3 | while read -r pid; do
		if { tr '\0' ' ' <"/proc/$pid/cmdline"; } 2>/dev/null | grep -qE '^(/[^ ]*/)?containerd-shim'; then
			log "stopping leftover containerd shim $pid"
			kill -KILL "$pid" 2>/dev/null || true
		fi
	done
	rm -f "$DOCKER_SOCK"
}

stop_postgres() {
	local d=$DIR/postgres bin
	[[ -f "$d/data/postmaster.pid" ]] || return 0
	bin=$(pg_bin) || return 0
	runuser -u postgres -- "$bin/pg_ctl" -D "$d/data" -m fast -w -t 30 stop >/dev/null 2>&1 || true
}

# ---------------------------------------------------------------------------------------------
# commands

# lock COMMAND: run the rest of this script holding DIR/.lock, so that two `up`/`down` never
# interleave. flock -o keeps the lock in the flock process itself: the daemons we start must
# not inherit the lock's file descriptor, or the lock would stay held as long as they run.
lock() {
	mkdir -p "$DIR"
	chmod 755 "$DIR" # the postgres user must reach DIR/postgres
	if [[ "${_TALOS_SERVICES_LOCKED:-}" != "$DIR" ]]; then
		local rc=0
		_TALOS_SERVICES_LOCKED=$DIR flock -o -w 900 -E 75 "$DIR/.lock" "$BASH" "$0" "$1" || rc=$?
		((rc != 75)) || fail "waited 900s for $DIR/.lock: another services.sh up/down is still running"
		exit "$rc"
	fi
}

shq() { printf "'%s'" "${1//\'/\'\\\'\'}"; }

# Ollama: built from the Go module proxy (no download site is reachable; newer versions do not
# build from the proxy), cached in $TOOLS, serving a tiny random-weight model that
# scripts/ollama-tiny writes (no weights are downloaded). Answers are gibberish; every API works.
ollama_bin() { printf '%s\n' "$TOOLS/ollama/bin/ollama"; }

install_ollama() {
	[[ -x "$(ollama_bin)" ]] && return 0
	local t0=$EPOCHREALTIME
	mkdir -p "$TOOLS/ollama"
	log "ollama     building v$OLLAMA_VERSION from the Go module proxy (about 2 minutes, once)"
	GOFLAGS=-mod=mod GOBIN="$TOOLS/ollama/bin" CGO_CFLAGS="${CGO_CFLAGS:--O2 -g -Wno-deprecated-declarations}" \
		go install -ldflags "-X=github.com/ollama/ollama/version.Version=$OLLAMA_VERSION" "github.com/ollama/ollama@v$OLLAMA_VERSION" \
		>"$TOOLS/ollama/build.log" 2>&1 || fail "building ollama v$OLLAMA_VERSION failed" "$TOOLS/ollama/build.log"
	log "ollama     built in $(since "$t0")"
}

ollama_ready() { curl -fsS -m 2 "http://127.0.0.1:$OLLAMA_PORT/api/version" >/dev/null; }
ollama_has_model() { curl -fs -m 5 "http://127.0.0.1:$OLLAMA_PORT/api/show" -d "{\"model\":\"$OLLAMA_MODEL\"}" >/dev/null; }

start_ollama() {
	local t0=$EPOCHREALTIME d=$DIR/ollama here
	here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
	mkdir -p "$d/models" "$d/model"
	if ! { pid_alive "$d/ollama.pid" "ollama serve" && ollama_ready; }; then
		stop_pid "$d/ollama.pid" "ollama serve" 10
		need_free_port "$OLLAMA_PORT" TALOS_SERVICES_OLLAMA_PORT
		install_ollama
		# shellcheck disable=SC2016 # expanded by the inner bash
		OLLAMA_HOST="127.0.0.1:$OLLAMA_PORT" OLLAMA_MODELS="$d/models" OLLAMA_NOPRUNE=1 \
			setsid bash -c 'echo $$ >"$0"; exec "$@"' "$d/ollama.pid" "$(ollama_bin)" serve </dev/null >"$d/ollama.log" 2>&1 &
		wait_for ollama "$d/ollama.log" "$d/ollama.pid" "ollama serve" ollama_ready
	fi
	if ! ollama_has_model; then
		(cd "$here/ollama-tiny" && GOFLAGS=-mod=mod go run . "$d/model") >"$d/model.log" 2>&1 || fail "writing the tiny model failed" "$d/model.log"
		(cd "$d/model" && OLLAMA_HOST="127.0.0.1:$OLLAMA_PORT" "$(ollama_bin)" create "$OLLAMA_MODEL" -f Modelfile) >>"$d/model.log" 2>&1 ||
			fail "ollama create $OLLAMA_MODEL failed" "$d/model.log"
	fi
	log "ollama     running          127.0.0.1:$OLLAMA_PORT (pid $(pid_of "$d/ollama.pid")), model $OLLAMA_MODEL, in $(since "$t0")"
}

cmd_env() {
	printf 'export TALOS_SERVICES_DIR=%s\n' "$(shq "$DIR")"
	printf 'export TALOS_TEST_REDIS_URL=%s\n' "$(shq "redis://127.0.0.1:$REDIS_PORT/0")"
	printf 'export TALOS_TEST_POSTGRES_URL=%s\n' "$(shq "postgres://postgres@127.0.0.1:$PG_PORT/postgres?sslmode=disable")"
	printf 'export TALOS_TEST_DOCKER_HOST=%s\n' "$(shq "unix://$DOCKER_SOCK")"
	printf 'export TALOS_TEST_CHROMA_URL=%s\n' "$(shq "http://127.0.0.1:$CHROMA_PORT")"
	printf 'export TALOS_TEST_BUSYBOX_IMAGE=%s\n' "$(shq "$BUSYBOX_IMAGE")"
	printf 'export TALOS_TEST_PYTHON_IMAGE=%s\n' "$(shq "$PYTHON_IMAGE")"
	if docker_cli image inspect "$BROWSER_IMAGE" >/dev/null 2>&1; then
		printf 'export TALOS_TEST_BROWSER_IMAGE=%s\n' "$(shq "$BROWSER_IMAGE")"
	fi
	printf 'export TALOS_TEST_OLLAMA_URL=%s\n' "$(shq "http://127.0.0.1:$OLLAMA_PORT")"
	printf 'export TALOS_TEST_OLLAMA_MODEL=%s\n' "$(shq "$OLLAMA_MODEL")"
	if [[ -x "$(mcp_everything_bin)" ]]; then
		printf 'export TALOS_TEST_MCP_EVERYTHING=%s\n' "$(shq "$(mcp_everything_bin)")"
	fi
	if [[ -x "$(mcp_filesystem_bin)" ]]; then
		printf 'export TALOS_TEST_MCP_FILESYSTEM=%s\n' "$(shq "$(mcp_filesystem_bin)")"
	fi
	if [[ -x /usr/bin/chromium ]]; then
		printf 'export TALOS_TEST_CHROMIUM=%s\n' "$(shq /usr/bin/chromium)"
	fi
}

cmd_up() {
	need_root up
	lock up
	local t0=$EPOCHREALTIME
	install_packages
	start_redis
	start_postgres
	start_docker
	build_python_image
	build_browser_image
	start_chroma
	install_mcp
	start_ollama
	cmd_env >"$DIR/env.sh"
	log "Redis, PostgreSQL, Docker (with the test images), Chroma, the MCP servers and Ollama are up in $(since "$t0"); state in $DIR"
	log "use them with:  eval \"\$($0 env)\"   (or: source $DIR/env.sh)"
}

cmd_python_image() {
	need_root python-image
	lock python-image
	build_python_image
}

cmd_browser_image() {
	need_root browser-image
	lock browser-image
	build_browser_image
}

cmd_down() {
	need_root down
	lock down
	stop_pid "$DIR/chroma/chroma.pid" run-chroma.mjs 5
	stop_pid "$DIR/ollama/ollama.pid" "ollama serve" 10
	stop_docker
	stop_postgres
	stop_pid "$DIR/redis/redis.pid" redis-server 10
	log "stopped what was started under $DIR (downloads stay cached in $TOOLS)"
}

cmd_status() {
	local ok=0 bin
	if pid_alive "$DIR/redis/redis.pid" redis-server && redis_ping; then
		log "redis      running  127.0.0.1:$REDIS_PORT"
	else
		log "redis      stopped"
		ok=1
	fi
	if bin=$(pg_bin) && [[ -f "$DIR/postgres/data/postmaster.pid" ]] && pg_ready; then
		log "postgres   running  127.0.0.1:$PG_PORT"
	else
		log "postgres   stopped"
		ok=1
	fi
	if pid_alive "$DIR/docker/dockerd.pid" dockerd && docker_ready; then
		log "docker     running  unix://$DOCKER_SOCK"
	else
		log "docker     stopped"
		ok=1
	fi
	if pid_alive "$DIR/chroma/chroma.pid" run-chroma.mjs && chroma_ready; then
		log "chroma     running  127.0.0.1:$CHROMA_PORT"
	else
		log "chroma     stopped"
		ok=1
	fi
	if [[ -x "$(mcp_everything_bin)" && -x "$(mcp_filesystem_bin)" ]]; then
		log "mcp        installed $TOOLS/mcp (server-everything, server-filesystem $MCP_SERVERS_VERSION)"
	else
		log "mcp        not installed (up installs it; status does not count it)"
	fi
	return "$ok"
}

usage() {
	sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//' >&2
	exit 2
}

case "${1:-}" in
up) cmd_up ;;
down) cmd_down ;;
env) cmd_env ;;
python-image) cmd_python_image ;;
browser-image) cmd_browser_image ;;
status) cmd_status ;;
-h | --help | help) usage ;;
*) usage ;;
esac
