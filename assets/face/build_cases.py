"""Builds the face evaluation set in assets/face/ from scikit-image 0.26.0's sample images.

Run from the repo root with Pillow and the unpacked skimage/data folder:
    python build_cases.py SKIMAGE_DATA_DIR assets/face
Writes <case>.jpg (JPEG q85) and labels.json. Every box is {x, y, w, h} in the case's pixels,
labelled by eye on the originals (see EVALUATION.md) and carried through each transform.
"""
import json, math, sys
from PIL import Image, ImageEnhance

src, out = sys.argv[1], sys.argv[2]
astro = Image.open(f"{src}/astronaut.png").convert("RGB")
camera = Image.open(f"{src}/camera.png").convert("RGB")
coffee = Image.open(f"{src}/coffee.png").convert("RGB")
chelsea = Image.open(f"{src}/chelsea.png").convert("RGB")
rocket = Image.open(f"{src}/rocket.jpg").convert("RGB")
# Labelled by eye on the 512x512 originals: forehead (hairline) to chin, ear/cheek to cheek/nose.
ASTRO_FACE = (177, 75, 95, 100)
CAMERA_FACE = (180, 105, 76, 92)
cases = []

def save(name, im, faces, expect=None, kind="", note=""):
    im.save(f"{out}/{name}.jpg", quality=85)
    cases.append({"name": name, "file": f"{name}.jpg", "kind": kind, "note": note,
                  "faces": [{"x": round(x, 1), "y": round(y, 1), "w": round(w, 1), "h": round(h, 1),
                             **({"expression": e} if e else {})} for (x, y, w, h), e in faces]})

def scaled(box, s, dx=0, dy=0):
    x, y, w, h = box
    return (x * s + dx, y * s + dy, w * s, h * s)

def rotated(im, box, deg):
    """Rotates im by deg (counter-clockwise) about its centre; the label keeps the face's size,
    centred on the rotated centre (an upright box, as detectors answer)."""
    x, y, w, h = box
    cx, cy = im.width / 2, im.height / 2
    fx, fy = x + w / 2 - cx, y + h / 2 - cy
    a = math.radians(deg)
    nx, ny = fx * math.cos(a) + fy * math.sin(a), -fx * math.sin(a) + fy * math.cos(a)
    return im.rotate(deg, resample=Image.BICUBIC, fillcolor=(128, 128, 128)), (nx + cx - w / 2, ny + cy - h / 2, w, h)

save("astronaut", astro, [(ASTRO_FACE, "happy")], kind="frontal", note="frontal, smiling, 95x100 face")
mirror = astro.transpose(Image.FLIP_LEFT_RIGHT)
save("astronaut_flip", mirror, [((512 - 177 - 95, 75, 95, 100), "happy")], kind="frontal", note="mirrored")
for deg in (20, 45, 90):
    im, box = rotated(astro, ASTRO_FACE, deg)
    save(f"astronaut_rot{deg}", im, [(box, "happy" if deg <= 20 else None)], kind="tilted", note=f"rotated {deg} degrees")
dark = ImageEnhance.Brightness(astro).enhance(0.35)
save("astronaut_dark", dark, [(ASTRO_FACE, None)], kind="frontal", note="brightness x0.35")
for s, tag in ((0.4, "small"), (0.25, "tiny")):
    bg = coffee.resize((640, 480))
    a = astro.resize((round(512 * s), round(512 * s)), Image.LANCZOS)
    bg.paste(a, (300, 150))
    save(f"astronaut_{tag}", bg, [(scaled(ASTRO_FACE, s, 300, 150), None)], kind="small",
         note=f"astronaut at x{s} pasted on a 640x480 coffee photo: face {round(95 * s)}x{round(100 * s)}")
save("camera", camera, [(CAMERA_FACE, None)], kind="profile", note="three-quarter profile, eye at a camera")
save("camera_flip", camera.transpose(Image.FLIP_LEFT_RIGHT), [((512 - 180 - 76, 105, 76, 92), None)], kind="profile", note="mirrored")
bg = rocket.resize((640, 480))
a = astro.resize((307, 307), Image.LANCZOS)
c = camera.resize((256, 256), Image.LANCZOS)
bg.paste(a, (10, 170)); bg.paste(c, (380, 60))
save("two_faces", bg, [(scaled(ASTRO_FACE, 0.6, 10, 170), "happy"), (scaled(CAMERA_FACE, 0.5, 380, 60), None)],
     kind="multi", note="astronaut x0.6 and camera x0.5 on the rocket photo")
save("cat", chelsea, [], kind="none", note="a cat: no human face")
save("coffee", coffee, [], kind="none", note="a cup of coffee")
save("rocket", rocket.resize((640, 427)), [], kind="none", note="a rocket on its pad")
json.dump({"source": "scikit-image 0.26.0 wheel, skimage/data", "cases": cases}, open(f"{out}/labels.json", "w"), indent=1)
