"""Place the five landmarks on real photos by hand, and look at placed points to check them.

    .venv/bin/python tools/annotate.py serve FOLDER [--out FOLDER/annotations.json] [--port 8765]
    .venv/bin/python tools/annotate.py render PHOTO [--points '{"heel": [x, y], ...}'] [--grid 50]
                                             [--crop X0 Y0 X1 Y1] [--side 900] --out view.png
    .venv/bin/python tools/annotate.py check [--ids ID ...] [--photos ROOT] --out FOLDER

`serve` opens a small page on http://127.0.0.1:PORT: pick a landmark (keys 1-5), click to place it,
drag to move it, fill in the labels, press Save; each photo's entry (sha256, size, labels, points in
original pixels) is written to the JSON file. Points follow ../shared/find/ANNOTATING.md.
`render` draws a photo (or a crop) with a labelled pixel grid and any points, plus zoomed insets
around each point. `check` renders every committed annotation (both passes where there are two).
"""

from __future__ import annotations

import argparse
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

from realset import (  # noqa: E402
    LANDMARKS,
    SIDES,
    TOE_POSTURES,
    draw_points,
    find_photo,
    fit,
    load_annotations,
    points_of,
    sha256,
    upright_rgb,
)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")
INSET_PX = 220


def render(rgb: np.ndarray, points: dict[str, np.ndarray], grid: int | None = None,
           crop: tuple[int, int, int, int] | None = None, side: int = 900,
           second: dict[str, np.ndarray] | None = None) -> np.ndarray:
    """The photo (or ``crop`` of it) at ``side`` px with a labelled grid, the points, and zoomed insets."""
    h, w = rgb.shape[:2]
    x0, y0, x1, y1 = crop or (0, 0, w, h)
    view, factor = fit(cv2.cvtColor(np.ascontiguousarray(rgb[y0:y1, x0:x1]), cv2.COLOR_RGB2BGR), side)
    if grid:
        for value in range((x0 // grid + 1) * grid, x1, grid):
            x = int((value - x0) * factor)
            cv2.line(view, (x, 0), (x, view.shape[0]), (255, 255, 0), 1)
            cv2.putText(view, str(value), (x + 2, 12), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 0), 1)
        for value in range((y0 // grid + 1) * grid, y1, grid):
            y = int((value - y0) * factor)
            cv2.line(view, (0, y), (view.shape[1], y), (255, 255, 0), 1)
            cv2.putText(view, str(value), (2, y - 2), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 0), 1)
    shift = {n: p - (x0, y0) for n, p in points.items()}
    draw_points(view, shift, factor)
    if second:
        draw_points(view, {n: p - (x0, y0) for n, p in second.items()}, factor, style="cross", colour=(0, 0, 255))
    if not points:
        return view
    return np.vstack([view, _insets(rgb, points, second, view.shape[1])])


def _insets(rgb: np.ndarray, points: dict[str, np.ndarray], second: dict[str, np.ndarray] | None,
            width: int) -> np.ndarray:
    """A strip of zoomed windows, one per point, each with a 10%-of-window grid and the point(s)."""
    spread = max(np.ptp(np.array(list(points.values())), axis=0).max() if len(points) > 1 else 100, 40)
    half = int(max(12, spread * 0.08))
    cells = []
    for name in LANDMARKS:
        if name not in points:
            continue
        cx, cy = points[name].astype(int)
        x0, y0 = cx - half, cy - half
        pad = cv2.copyMakeBorder(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), 2 * half, 2 * half, 2 * half, 2 * half,
                                 cv2.BORDER_CONSTANT, value=(40, 40, 40))
        window = pad[y0 + 2 * half:y0 + 4 * half, x0 + 2 * half:x0 + 4 * half]
        cell, factor = fit(window, INSET_PX)
        for k in range(1, 10):
            v = int(k * INSET_PX / 10)
            cv2.line(cell, (v, 0), (v, INSET_PX), (90, 90, 90), 1)
            cv2.line(cell, (0, v), (INSET_PX, v), (90, 90, 90), 1)
        draw_points(cell, {name: points[name] - (x0, y0)}, factor)
        if second and name in second:
            draw_points(cell, {name: second[name] - (x0, y0)}, factor, style="cross", colour=(0, 0, 255))
        cv2.putText(cell, f"{name} +/-{half}px", (3, INSET_PX - 6), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 255, 255), 1)
        cells.append(cell)
    strip = np.hstack(cells)
    strip, _ = fit(strip, width) if strip.shape[1] > width else (strip, 1.0)
    return cv2.copyMakeBorder(strip, 0, 0, 0, width - strip.shape[1], cv2.BORDER_CONSTANT, value=(32, 32, 32))


PAGE = """<!doctype html><meta charset=utf-8><title>toeangle annotate</title>
<style>body{font:14px sans-serif;margin:8px}#wrap{position:relative;display:inline-block}
canvas{border:1px solid #888;cursor:crosshair;max-width:95vw}label{margin-right:10px}
button.on{background:#fc0}</style>
<div><button id=prev>&lt;</button> <span id=name></span> <button id=next>&gt;</button>
<span id=lm></span> <button id=save>Save</button> <span id=msg></span></div>
<div>side <select id=side>SIDES</select> <label><input type=checkbox id=acceptable>acceptable</label>
<label><input type=checkbox id=toe_cut_off>toe cut off</label><label><input type=checkbox id=standing>standing</label>
<label><input type=checkbox id=heel_raised>heel raised</label> toe <select id=toe>TOES</select>
note <input id=note size=40></div><div id=wrap><canvas id=c></canvas></div>
<script>
const NAMES=LANDMARK_NAMES, COLS=["#0af","#fc0","#0f0","#f0f","#f00"];
let files=[],i=0,img=new Image(),pts={},cur=0,drag=null,scale=1;const c=document.getElementById("c"),g=c.getContext("2d");
const lm=document.getElementById("lm");NAMES.forEach((n,k)=>{const b=document.createElement("button");b.textContent=(k+1)+" "+n;
 b.onclick=()=>{cur=k;draw()};lm.appendChild(b)});
function draw(){g.drawImage(img,0,0,c.width,c.height);NAMES.forEach((n,k)=>{const p=pts[n];if(!p)return;
 g.fillStyle=COLS[k];g.beginPath();g.arc(p[0]*scale,p[1]*scale,5,0,7);g.fill();g.fillText(n,p[0]*scale+7,p[1]*scale-7)});
 [...lm.children].forEach((b,k)=>b.className=k==cur?"on":"")}
function at(e){const r=c.getBoundingClientRect(),f=c.width/r.width;return[(e.clientX-r.left)*f/scale,(e.clientY-r.top)*f/scale]}
c.onmousedown=e=>{const q=at(e);drag=NAMES.find(n=>pts[n]&&Math.hypot(pts[n][0]-q[0],pts[n][1]-q[1])*scale<8);
 if(!drag){pts[NAMES[cur]]=q.map(v=>Math.round(v*10)/10);drag=NAMES[cur];cur=Math.min(cur+1,4)}draw()};
c.onmousemove=e=>{if(drag){pts[drag]=at(e).map(v=>Math.round(v*10)/10);draw()}};onmouseup=()=>drag=null;
onkeydown=e=>{if(e.key>="1"&&e.key<="5"){cur=+e.key-1;draw()}if(e.key=="Delete"){delete pts[NAMES[cur]];draw()}};
const F=["side","acceptable","toe_cut_off","standing","heel_raised","toe","note"],$=id=>document.getElementById(id);
async function load(){const f=files[i];$("name").textContent=(i+1)+"/"+files.length+" "+f;
 const a=await (await fetch("/entry?path="+encodeURIComponent(f))).json();pts={};cur=0;
 NAMES.forEach(n=>{if(a.points&&a.points[n])pts[n]=a.points[n]});
 F.forEach(k=>{const v=k in a?a[k]:(a.posture||{})[k];const el=$(k);if(el.type=="checkbox")el.checked=!!v;else el.value=v??el.value});
 img.onload=()=>{scale=Math.min(1,1400/Math.max(img.width,img.height));c.width=img.width*scale;c.height=img.height*scale;draw()};
 img.src="/photo?path="+encodeURIComponent(f)}
$("save").onclick=async()=>{const b={path:files[i],points:Object.fromEntries(NAMES.map(n=>[n,pts[n]||null]))};
 F.forEach(k=>{const el=$(k);b[k]=el.type=="checkbox"?el.checked:el.value});
 const r=await fetch("/entry",{method:"POST",body:JSON.stringify(b)});$("msg").textContent=r.ok?"saved":"error "+r.status};
$("prev").onclick=()=>{i=(i+files.length-1)%files.length;load()};$("next").onclick=()=>{i=(i+1)%files.length;load()};
fetch("/files").then(r=>r.json()).then(f=>{files=f;load()});
</script>"""


def serve(folder: Path, out: Path, port: int) -> None:
    """A local page to annotate every photo under ``folder``; entries are saved to ``out``."""
    files = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    store = json.loads(out.read_text()) if out.exists() else {"photos": []}
    options = lambda values: "".join(f"<option>{v}</option>" for v in values)  # noqa: E731
    page = (PAGE.replace("LANDMARK_NAMES", json.dumps(list(LANDMARKS))).replace("SIDES", options(SIDES))
            .replace("TOES", options(TOE_POSTURES))).encode()

    def entry_for(path: str) -> dict:
        return next((e for e in store["photos"] if e.get("local") == path), {})

    class Handler(BaseHTTPRequestHandler):
        def _send(self, body: bytes, kind: str, status: int = 200) -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _path(self) -> str | None:
            path = parse_qs(urlparse(self.path).query).get("path", [""])[0]
            return path if path in files else None

        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            route = urlparse(self.path).path
            if route == "/":
                return self._send(page, "text/html; charset=utf-8")
            if route == "/files":
                return self._send(json.dumps(files).encode(), "application/json")
            path = self._path()
            if path is None:
                return self._send(b"unknown photo", "text/plain", 404)
            if route == "/entry":
                return self._send(json.dumps(entry_for(path)).encode(), "application/json")
            if route == "/photo":  # re-encoded upright, so the page's pixels are the annotation's pixels
                ok, png = cv2.imencode(".png", cv2.cvtColor(upright_rgb((folder / path).read_bytes()),
                                                            cv2.COLOR_RGB2BGR))
                return self._send(png.tobytes(), "image/png")
            return self._send(b"not found", "text/plain", 404)

        def do_POST(self) -> None:  # noqa: N802
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            if body.get("path") not in files or set(body.get("points", {})) != set(LANDMARKS):
                return self._send(b"bad entry", "text/plain", 400)
            data = (folder / body["path"]).read_bytes()
            height, width = upright_rgb(data).shape[:2]
            entry = entry_for(body["path"])
            if not entry:
                store["photos"].append(entry)
            entry.update(local=body["path"], sha256=sha256(data), width=width, height=height, side=body["side"],
                         acceptable=body["acceptable"], toe_cut_off=body["toe_cut_off"],
                         posture=dict(standing=body["standing"], heel_raised=body["heel_raised"], toe=body["toe"]),
                         points=body["points"], note=body["note"])
            out.write_text(json.dumps(store, indent=1) + "\n")
            return self._send(b"saved", "text/plain")

        def log_message(self, *args) -> None:
            pass

    print(f"annotating {len(files)} photos of {folder} -> {out}: http://127.0.0.1:{port}/")
    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()


def check(ids: list[str] | None, photos_root: Path | None, out: Path) -> None:
    """Every annotation drawn on its photo (first pass dots, second pass red crosses) with insets."""
    out.mkdir(parents=True, exist_ok=True)
    for entry in load_annotations():
        if ids and entry["id"] not in ids:
            continue
        found = find_photo(entry, photos_root)
        if found.data is None:
            print(f"{entry['id']}: missing ({found.where})")
            continue
        view = render(upright_rgb(found.data), points_of(entry["points"]),
                      second=points_of(entry.get("repeat")) or None)
        cv2.imwrite(str(out / (entry["id"].replace("/", "_") + ".png")), view)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser("serve")
    s.add_argument("folder", type=Path)
    s.add_argument("--out", type=Path)
    s.add_argument("--port", type=int, default=8765)
    r = sub.add_parser("render")
    r.add_argument("photo", type=Path)
    r.add_argument("--points", default="{}", help="JSON {name: [x, y]}")
    r.add_argument("--grid", type=int)
    r.add_argument("--crop", type=int, nargs=4)
    r.add_argument("--side", type=int, default=900)
    r.add_argument("--out", type=Path, required=True)
    c = sub.add_parser("check")
    c.add_argument("--ids", nargs="*")
    c.add_argument("--photos", type=Path)
    c.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    if args.command == "serve":
        serve(args.folder, args.out or args.folder / "annotations.json", args.port)
    elif args.command == "render":
        rgb = upright_rgb(args.photo.read_bytes())
        view = render(rgb, points_of(json.loads(args.points)), args.grid, tuple(args.crop) if args.crop else None,
                      args.side)
        cv2.imwrite(str(args.out), view)
    else:
        check(args.ids, args.photos, args.out)


if __name__ == "__main__":
    main()
