# scripts/stack-runners.bash — sourced by scripts/stack: runners 2..N, each a Docker Engine
# with its own containerd, data and run dirs, in its own network namespace.
#
# Runner 1 is the stack's default engine in the host's network namespace ($RUN_DIR). Runner K
# lives in $RUN_DIR/rK and $DATA_DIR/rK, and its daemons run in the network namespace
# ${NETNS_PREFIX}-rK, because two engines in one namespace break each other's docker0 bridge.
# Their API sockets are plain files, so every runner is reachable from the host.
#
# The registry: BuildKit treats 127.0.0.1 as plain HTTP and refs must read the same on every
# runner, so each runner sees the one registry at 127.0.0.1:$REGISTRY_PORT. Inside the
# runner's namespace a busybox `nc -ll` listens on that port and runs, per connection,
# `nsenter` into the registry's namespace and `nc 127.0.0.1 PORT` there. One process per
# connection and no unix socket in between: busybox is already in the prefix, socat is not on
# the machine and would need a library the host lacks.
#
# Runner 2 is the modern engine (MODERN_SUITE, unpacked into MODERN_PREFIX); the others run
# the default engine from BASE_PREFIX.
#
# Every function here runs with the per-engine globals (RUN_DIR, DATA_DIR, CONTAINERD_SOCK,
# DOCKER_SOCK, DOCKER_CONFIG_DIR, NETNS, PREFIX) pointed at one runner by `as_runner`, always in a
# subshell, so the caller's runner-1 view is never changed.

NETNS_DIR=/run/netns
BASE_RUN_DIR=$RUN_DIR
BASE_DATA_DIR=$DATA_DIR
MAX_RUNNERS=16
# The network namespace the current globals' daemons run in; empty: the host's (runner 1).
NETNS=
RUNNER_COMPONENTS=(containerd dockerd forwarder)
RUNNER_STOP_ORDER=(dockerd containerd forwarder)

# Namespace names are global on the machine: a stack with another run dir gets its own prefix.
netns_prefix() {
	if [[ $BASE_RUN_DIR == /run/rbuild ]]; then
		printf 'rbuild\n'
	else
		printf 'rbuild-%s\n' "$(printf '%s' "$BASE_RUN_DIR" | cksum | cut -d' ' -f1)"
	fi
}

# A reference to the registry's namespace that outlives any one process: the forwarders
# nsenter it per connection.
host_netns() { printf '%s-host\n' "$(netns_prefix)"; }

# Point the per-engine globals at runner $1 (1 = the default engine).
as_runner() {
	local k=$1
	if ((k == 1)); then
		RUN_DIR=$BASE_RUN_DIR
		DATA_DIR=$BASE_DATA_DIR
		NETNS=
	else
		RUN_DIR=$BASE_RUN_DIR/r$k
		DATA_DIR=$BASE_DATA_DIR/r$k
		NETNS=$(netns_prefix)-r$k
	fi
	# The modern engine's runner runs its daemons (and docker CLI) from the modern prefix, on a
	# data dir of its own: containerd 2 and Docker 28 migrate what they find, which the older
	# generation (a runner 2 of an older checkout, or RBUILD_STACK_MODERN_SUITE=) must not meet.
	if ((k == MODERN_RUNNER)) && [[ -n $MODERN_SUITE ]]; then
		PREFIX=$MODERN_PREFIX
		DATA_DIR=$BASE_DATA_DIR/r$k-$MODERN_SUITE
	else
		PREFIX=$BASE_PREFIX
	fi
	CONTAINERD_SOCK=$RUN_DIR/containerd.sock
	DOCKER_SOCK=$RUN_DIR/docker.sock
	DOCKER_CONFIG_DIR=$RUN_DIR/docker-config
}

# Numbers of the extra runners that have a run dir, ascending.
extra_runners() {
	local d
	for d in "$BASE_RUN_DIR"/r[0-9]*; do
		[[ -d $d && ${d##*/r} =~ ^[0-9]+$ ]] && printf '%s\n' "${d##*/r}"
	done | sort -n
}

runner_address() { printf 'docker://%s\n' "$DOCKER_SOCK"; }

# `net:[INODE]` of a named namespace, as /proc/PID/ns/net reads.
netns_id() {
	local ino
	ino=$(stat -L -c %i "$NETNS_DIR/$1" 2>/dev/null) || return 1
	printf 'net:[%s]\n' "$ino"
}

# The namespace the current globals' daemons belong in, as /proc/PID/ns/net reads.
target_netns_id() {
	if [[ -n $NETNS ]]; then
		netns_id "$NETNS"
	else
		readlink /proc/self/ns/net
	fi
}

ensure_netns() {
	local name=$1
	if [[ ! -e $NETNS_DIR/$name ]]; then
		ip netns add "$name" || die "ip netns add $name failed"
	fi
	ip -n "$name" link set lo up || die "cannot bring up lo in network namespace $name"
}

# The host reference points at the namespace the registry runs in; re-made when stale.
ensure_host_netns() {
	local name pid
	name=$(host_netns)
	pid=$(as_runner 1 && running_pid registry) || die "the registry is not running; runners need it"
	if [[ -e $NETNS_DIR/$name && $(netns_id "$name") == "$(readlink "/proc/$pid/ns/net")" ]]; then
		return 0
	fi
	[[ -e $NETNS_DIR/$name ]] && ip netns delete "$name" 2>/dev/null
	ip netns attach "$name" "$pid" || die "ip netns attach $name $pid failed"
}

ready_forwarder() {
	nsenter --net="$NETNS_DIR/$NETNS" curl -sf --max-time 5 "http://$REGISTRY_ADDR/v2/" >/dev/null 2>&1
}

start_forwarder() {
	local script=$RUN_DIR/registry-forward bb
	# busybox is in runner 1's prefix (the modern engine's has none).
	bb=$(PREFIX=$BASE_PREFIX prefix_bin busybox) || die "busybox missing from $BASE_PREFIX"
	# A script, because busybox nc runs -e PROG without arguments.
	cat >"$script.new" <<EOF
#!/bin/sh
exec nsenter --net=$NETNS_DIR/$(host_netns) $bb nc 127.0.0.1 $REGISTRY_PORT
EOF
	chmod 0755 "$script.new"
	mv "$script.new" "$script"
	launch forwarder "$bb" nc -ll -p "$REGISTRY_PORT" -e "$script"
}

# Start (or reuse) runner $k; runs in a subshell of its own with its globals.
runner_up() {
	local k=$1 started_engine=0
	as_runner "$k"
	STARTED=()
	COMPONENTS=("${RUNNER_COMPONENTS[@]}")
	STOP_ORDER=("${RUNNER_STOP_ORDER[@]}")
	trap stop_started_on_failure EXIT
	ensure_netns "$NETNS"
	ensure_host_netns
	write_engine_configs
	if ! running_pid dockerd >/dev/null; then
		check_no_foreign_engine
	fi
	reuse_or_clean forwarder || start_forwarder
	reuse_or_clean containerd || start_containerd
	wait_ready containerd
	if ! reuse_or_clean dockerd; then
		start_dockerd
		started_engine=1
	fi
	wait_ready dockerd
	wait_ready forwarder
	if ((started_engine)); then
		smoke_test || log "warning: runner $k cannot run containers; RUN steps will likely fail"
	elif ((k == MODERN_RUNNER)) && [[ -n $MODERN_SUITE ]] && ! engine_is_modern; then
		# Started by a scripts/stack that predates the modern runner (or with another suite):
		# it may be in use, so it is not restarted here; the tests then get no modern engine.
		log "warning: runner $k runs an engine not from $MODERN_SUITE (dockerd from $(engine_prefix || echo '?')); RBUILD_TEST_MODERN_ENGINE is not set. To replace it: scripts/stack down --runner $k && scripts/stack up --runners $k"
	fi
	log "runner $k is up: engine $DOCKER_SOCK in network namespace $NETNS"
	trap - EXIT
}

# Stop runner $k by its pid files and remove its namespace; in a subshell.
runner_down() {
	local k=$1 name
	as_runner "$k"
	for name in "${RUNNER_STOP_ORDER[@]}"; do
		stop_component "$name"
	done
	if [[ -e $NETNS_DIR/$NETNS ]]; then
		ip netns delete "$NETNS" 2>/dev/null || log "warning: cannot delete network namespace $NETNS"
	fi
	log "runner $k stopped"
}

# Stop every extra runner; the host reference goes with the last one.
runners_down() {
	local k name
	for k in $(extra_runners | sort -rn); do
		(runner_down "$k")
	done
	name=$(host_netns)
	if [[ -e $NETNS_DIR/$name ]]; then
		ip netns delete "$name" 2>/dev/null || log "warning: cannot delete network namespace $name"
	fi
}

# The prefix the current runner's dockerd runs from (by its /proc/PID/exe).
engine_prefix() {
	local pid exe
	pid=$(running_pid dockerd) || return 1
	exe=$(readlink "/proc/$pid/exe") || return 1
	exe=${exe% (deleted)}
	printf '%s\n' "${exe%/*/*/dockerd}"
}

# Whether the current runner's dockerd is the modern engine: its prefix records docker.io
# from MODERN_SUITE (any checkout's prefix counts, as for reusing a stack).
engine_is_modern() {
	local prefix
	[[ -n $MODERN_SUITE ]] || return 1
	prefix=$(engine_prefix) || return 1
	grep -q "^docker.io [^ ]* $MODERN_SUITE\$" "$prefix/.versions" 2>/dev/null
}

runner_is_up() {
	as_runner "$1"
	running_pid dockerd >/dev/null && ready_dockerd
}

# `RBUILD_TEST_RUNNERS`: comma-separated addresses of runners 1..$1.
runner_addresses() {
	local k list=()
	for ((k = 1; k <= $1; k++)); do
		list+=("$(as_runner "$k" && runner_address)")
	done
	(
		IFS=,
		printf '%s\n' "${list[*]}"
	)
}

# The highest N such that runners 1..N all answer.
runners_up_count() {
	local k=1
	while ((k < MAX_RUNNERS)) && (runner_is_up $((k + 1))); do
		k=$((k + 1))
	done
	printf '%s\n' "$k"
}

runner_status() {
	local k=$1 name pid
	as_runner "$k"
	for name in "${RUNNER_COMPONENTS[@]}"; do
		if pid=$(running_pid "$name"); then
			printf '%-10s pid %-7s %s\n' "r$k/$name" "$pid" "$("ready_$name" && echo 'running, answering' || echo 'running, NOT answering')"
		else
			printf '%-10s %s\n' "r$k/$name" stopped
		fi
	done
	printf '%-10s %s\n' "r$k" "$(runner_address) in network namespace $NETNS"
}

parse_runner_count() {
	[[ $1 =~ ^[0-9]+$ ]] && (($1 >= 1 && $1 <= MAX_RUNNERS)) ||
		die "--runners takes a number from 1 to $MAX_RUNNERS, not '$1'"
}
