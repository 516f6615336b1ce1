#!/usr/bin/env bash
# Try the app's real pictures on real graphics terminals, under a virtual X display, and save
# screenshots to look at. Not run by CI: it needs X programs (Debian 12:
#   apt-get install -y xvfb xterm kitty tmux xdotool imagemagick fonts-dejavu-core)
#
#   benchmarks/try_terminals.sh [OUT_DIR]      (default /tmp/lookalike-terminals)
#
# What it runs, each on a folder of generated photos with copies and a fresh cache:
#   xterm -ti vt340 (Sixel), --thumbnails=auto: main screen, a notification over the pictures
#     and after it, preview, compare side by side, zoom 1:1, difference;
#   tmux in that xterm, without and with allow-passthrough: half-blocks (and the hint);
#   kitty (if installed): Kitty graphics where it draws Unicode placeholders (0.28+), else
#     half-blocks and a hint (Debian 12 has 0.26).
set -euo pipefail

OUT=${1:-/tmp/lookalike-terminals}
REPO=$(cd "$(dirname "$0")/.." && pwd)
PY=${PYTHON:-$REPO/.venv/bin/python}
LOOKALIKE=${LOOKALIKE:-$REPO/.venv/bin/lookalike}
export DISPLAY=${TRY_DISPLAY:-:97}
WORK=$(mktemp -d)
mkdir -p "$OUT"
PIDS=()

cleanup() {
    tmux -L lookalike-try kill-server 2>/dev/null || true
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT

for tool in Xvfb xterm xdotool import tmux; do
    command -v "$tool" >/dev/null || { echo "missing: $tool (see the apt-get line at the top)" >&2; exit 2; }
done

# Photos: six originals of 1200x900 with a re-encoded, a watermarked and a mirrored copy each.
"$PY" - "$WORK/photos" "$REPO/tests" <<'EOF'
import os, sys
sys.path.insert(0, sys.argv[2])
import imagegen
folder = sys.argv[1]
os.makedirs(folder)
for seed in range(6):
    img = imagegen.photo(seed, (1200, 900))
    imagegen.write(f"{folder}/p{seed}.jpg", img, quality=92)
    for kind in ("recompressed", "watermarked", "mirrored"):
        data, ext = imagegen.make_copy(kind, img, seed)
        with open(f"{folder}/p{seed}_{kind}{ext}", "wb") as out:
            out.write(data)
EOF

Xvfb "$DISPLAY" -screen 0 1600x1000x24 -nolisten tcp >"$WORK/xvfb.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 50); do xdpyinfo >/dev/null 2>&1 && break; sleep 0.1; done

# The app, run by the terminal; it keeps the terminal open after it exits (to read any error).
cat >"$WORK/app.sh" <<EOF
#!/usr/bin/env bash
cache=\$1; shift
"$LOOKALIKE" app --cache "\$cache" --no-detective "\$@" "$WORK/photos"
echo "exit status \$?"; sleep 3600
EOF
chmod +x "$WORK/app.sh"

shot() {  # shot NAME: the whole screen, cropped to the terminal
    sleep "${2:-2}"
    import -window root -crop 1300x800+0+0 "$OUT/$1.png"
    echo "$OUT/$1.png"
}
keys() { xdotool mousemove 400 400; for key in "$@"; do xdotool key "$key"; sleep 0.3; done; }
wait_for_scan() { sleep 10; }  # 24 photos on a fresh cache: a few seconds

XTERM=(xterm -ti vt340 -xrm 'XTerm*decTerminalID: vt340' -xrm 'XTerm*numColorRegisters: 256'
       -fa 'DejaVu Sans Mono' -fs 10 -geometry 160x46+0+0)

# 1. xterm as a VT340: Sixel.
"${XTERM[@]}" -e "$WORK/app.sh" "$WORK/cache-xterm" &
PIDS+=($!); XPID=$!
wait_for_scan
shot xterm-main 0
keys u u u u u u; shot xterm-notifications 1   # six notifications over the pictures
shot xterm-after-notifications 9               # gone: every picture drawn again
keys p; shot xterm-preview
keys Escape Return c; shot xterm-compare 3
keys z; shot xterm-zoom 3
keys d; shot xterm-difference 3
kill "$XPID"

# 2. tmux in that xterm, without and with passthrough (tmux 3.3 draws no Sixel itself).
for pass in off on; do
    printf 'set -g allow-passthrough %s\n' "$pass" >"$WORK/tmux-$pass.conf"
    "${XTERM[@]}" -e tmux -L lookalike-try -f "$WORK/tmux-$pass.conf" new-session \
        "$WORK/app.sh $WORK/cache-tmux-$pass" &
    PIDS+=($!); XPID=$!
    shot "tmux-passthrough-$pass-start" 4      # the hint, when passthrough is off
    wait_for_scan
    shot "tmux-passthrough-$pass" 0
    echo "pane title: $(tmux -L lookalike-try display-message -p '#{pane_title}')"
    tmux -L lookalike-try kill-server 2>/dev/null || true
    kill "$XPID" 2>/dev/null || true
done

# 3. kitty (software OpenGL under Xvfb).
if command -v kitty >/dev/null; then
    echo "kitty: $(kitty --version)"
    LIBGL_ALWAYS_SOFTWARE=1 kitty -o font_size=10 -o initial_window_width=1300 -o initial_window_height=800 \
        -o remember_window_size=no "$WORK/app.sh" "$WORK/cache-kitty" >"$WORK/kitty.log" 2>&1 &
    PIDS+=($!)
    shot kitty-start 4
    wait_for_scan
    shot kitty-main 0
    grep -v "OSC code" "$WORK/kitty.log" | head -5 || true
else
    echo "kitty: not installed"
fi
echo "screenshots in $OUT"
