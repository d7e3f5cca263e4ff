# bench/lib.sh — shared by bench/run and bench/profile (sourced, not executed).
#
# Provides: log/die, bench_stack (stack env, buildx, docker CLI), bench_inputs (the scenario
# contexts under $WORK), the RB/BX client command prefixes (bench_clients) and the untimed
# preparation steps of the scenarios (prep_none, prep_cold, prep_edit, prep_seed).
# Callers set BENCH_DIR, REPO, WORK and LOG_TAG before sourcing.

log() { printf '%s: %s\n' "${LOG_TAG:-bench}" "$*" >&2; }
die() {
	printf '%s: error: %s\n' "${LOG_TAG:-bench}" "$*" >&2
	exit 1
}

# Stack env (BUILDKIT_HOST, DOCKER_HOST, registry), buildx DOCKER_CONFIG, $DOCKER (the stack's CLI).
bench_stack() {
	local STACK_ENV RUN REGP
	if ! STACK_ENV=$(scripts/stack up); then
		# `up` refuses when the stack's pid files are gone but its engine still runs (seen when
		# another session removed them). If the engine at the default run dir answers, use it.
		RUN=${RBUILD_STACK_RUN:-/run/rbuild}
		scripts/stack docker version >/dev/null 2>&1 || die "scripts/stack up failed and no engine answers"
		log "warning: scripts/stack up failed; using the running engine at $RUN/docker.sock"
		REGP=${RBUILD_REGISTRY_PORT:-5000}
		STACK_ENV="export BUILDKIT_HOST=docker://$RUN/docker.sock DOCKER_HOST=unix://$RUN/docker.sock
export RBUILD_TEST_REGISTRY=127.0.0.1:$REGP RBUILD_TEST_BASE=127.0.0.1:$REGP/rbuild/busybox:latest"
	fi
	eval "$STACK_ENV"
	eval "$(scripts/stack buildx)"
	: "${BUILDKIT_HOST:?}" "${DOCKER_HOST:?}" "${RBUILD_TEST_REGISTRY:?}" "${RBUILD_TEST_BASE:?}" "${DOCKER_CONFIG:?}"
	REG=$RBUILD_TEST_REGISTRY
	BASE=$RBUILD_TEST_BASE

	# The stack's own docker CLI (matches the engine); DOCKER_CONTEXT would override DOCKER_HOST.
	unset DOCKER_CONTEXT
	DOCKER=$(compgen -G "$REPO/.stack-cache/root/usr/bin/docker" || command -v docker) ||
		die "no docker CLI"
	export DOCKER_HOST DOCKER_CONFIG
}

# The scenario inputs under $WORK: A_CTX (a), BIG_CTX + BIG_DF (b, c), D_CTX + D_CACHE + D_IMAGE (d).
bench_inputs() {
	mkdir -p "$WORK"

	# a: a small project
	A_CTX=$WORK/small
	rm -rf "$A_CTX" && mkdir -p "$A_CTX/src"
	printf 'FROM %s\nWORKDIR /app\nCOPY src/ ./src/\nRUN cat src/*.txt > all.txt\nCMD ["cat", "/app/all.txt"]\n' \
		"$BASE" >"$A_CTX/Dockerfile"
	for i in 1 2 3; do printf 'file %s\n' "$i" >"$A_CTX/src/$i.txt"; done

	# b/c: the big context (regenerated each time from a fixed seed, so c's edits do not leak)
	BIG_CTX=$WORK/big
	BIG_DF=$WORK/big.Dockerfile
	log "generating the context in $BIG_CTX"
	rm -rf "$BIG_CTX"
	python3 "$BENCH_DIR/gencontext.py" "$BIG_CTX"
	printf 'FROM scratch\nCOPY . /ctx\n' >"$BIG_DF"
	BIG_FILES=$(find "$BIG_CTX" -type f | wc -l)
	BIG_SIZE=$(du -sb "$BIG_CTX" | cut -f1)

	# d: the seed example
	D_CTX=$WORK/seed
	rm -rf "$D_CTX" && cp -r "$REPO/examples/app" "$D_CTX"
	D_CACHE=$REG/rbuild-bench/seed-cache
	D_IMAGE=$REG/rbuild-bench/seed:1
}

# RB and BX: the client command prefixes, both with the given --progress mode.
bench_clients() {
	local progress=${1:-quiet}
	RB=("$RBUILD" --addr "$BUILDKIT_HOST" build --progress "$progress")
	BX=("$DOCKER" buildx build --progress "$progress")
}

# The per-scenario client arguments (identical for both clients except the tag of a, b, c).
# scenario_args SCENARIO CLIENT -> ARGS array
scenario_args() {
	case $1 in
	a) ARGS=(-t "bench/a-$2:latest" "$A_CTX") ;;
	b) ARGS=(-t "bench/b-$2:latest" -f "$BIG_DF" "$BIG_CTX") ;;
	c) ARGS=(-t "bench/c-$2:latest" -f "$BIG_DF" "$BIG_CTX") ;;
	d) ARGS=(--cache-from "type=registry,ref=$D_CACHE" --cache-to "type=registry,ref=$D_CACHE,mode=max"
		-t "$D_IMAGE" --push "$D_CTX") ;;
	*) die "unknown scenario '$1'" ;;
	esac
}

prune() { "$DOCKER" builder prune -af >/dev/null; }
rmi() { "$DOCKER" image rm -f "$@" >/dev/null 2>&1 || true; }

# Delete a tag's manifest from the registry (deletion is enabled in the stack's registry).
registry_delete() {
	local ref=$1 repo tag digest
	repo=${ref#"$REG"/}
	tag=${repo##*:}
	repo=${repo%:*}
	digest=$(curl -fsSI \
		-H 'Accept: application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json' \
		"http://$REG/v2/$repo/manifests/$tag" 2>/dev/null | tr -d '\r' | awk 'tolower($1)=="docker-content-digest:" {print $2}') || true
	[[ -n $digest ]] && curl -fsS -X DELETE "http://$REG/v2/$repo/manifests/$digest" >/dev/null || true
}

# Untimed preparation before a run: prep_X CLIENT RUN
prep_none() { :; }
prep_cold() {
	rmi "bench/b-$1:latest" "bench/c-$1:latest"
	prune
}
# A different single-file edit before every run (the same file, new content).
prep_edit() { printf 'edit %s %s %s\n' "$1" "$2" "$RANDOM" >"$BIG_CTX/d042/f042.txt"; }
prep_seed() {
	rmi "$D_IMAGE"
	registry_delete "$D_IMAGE"
	prune
}
# The preparation step of a scenario.
scenario_prep() {
	case $1 in
	a) echo prep_none ;;
	b) echo prep_cold ;;
	c) echo prep_edit ;;
	d) echo prep_seed ;;
	*) die "unknown scenario '$1'" ;;
	esac
}
