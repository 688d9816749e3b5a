"""The embedded vision benchmark: digits 0-9 rendered from real font families.

ID = printed families; OOD = handwriting-like families (disjoint val/test families), decorative
families, and scikit-learn's real handwritten digits. Style domains, like WILDS' hospitals.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ...errors import RTDError

FONT_SUFFIXES = (".ttf", ".otf")
DEBIAN_FONT_PACKAGES = (
    "fonts-dejavu fonts-liberation fonts-freefont-ttf fonts-urw-base35 fonts-cmu fonts-texgyre "
    "fonts-linuxlibertine fonts-noto-core fonts-dkg-handwriting fonts-bwht fonts-breip fonts-femkeklaver "
    "fonts-humor-sans fonts-kristi fonts-dancingscript fonts-rufscript fonts-sjfonts fonts-ecolier-court fonts-aenigma"
)
_RENDER_SCALE = 2  # render at 2x and downsample with antialiasing


@dataclass(frozen=True)
class RenderJitter:
    scale: tuple[float, float]
    shift: float
    rotation: float
    stroke: tuple[int, int]


def discover_families(font_dirs: list[str]) -> dict[str, list[Path]]:
    """Map each installed font family name to its font files (all styles), sorted."""
    families: dict[str, list[Path]] = {}
    for root in font_dirs:
        root_path = Path(root)
        if not root_path.is_dir():
            continue
        for path in sorted(root_path.rglob("*")):
            if path.suffix.lower() not in FONT_SUFFIXES or not path.is_file():
                continue
            try:
                family = ImageFont.truetype(str(path), 16).getname()[0]
            except OSError:
                continue
            families.setdefault(family, []).append(path)
    return families


def resolve_families(names: list[str], families: dict[str, list[Path]], group: str) -> dict[str, list[Path]]:
    """Look up each requested family; an unknown one raises an error that names the fix."""
    missing = [n for n in names if n not in families]
    if missing:
        raise RTDError(
            f"unknown font family {missing[0]!r} in `data.{group}`"
            + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else "")
            + ": it is not installed in `data.font_dirs`. Install the Debian fonts with "
            f"`apt-get install {DEBIAN_FONT_PACKAGES}` (or `make setup`), or remove the name from params.yaml. "
            "`fc-list : family` lists the installed families."
        )
    return {n: families[n] for n in names}


def render_digit(font_path: Path, digit: int, size: int, jitter: RenderJitter, rng: np.random.Generator) -> np.ndarray:
    """Render one dark-on-white digit as a (size, size) uint8 image with random size, position, stroke and rotation."""
    canvas = size * _RENDER_SCALE
    glyph_px = int(round(canvas * rng.uniform(*jitter.scale)))
    stroke = int(rng.integers(jitter.stroke[0], jitter.stroke[1] + 1))
    angle = float(rng.uniform(-jitter.rotation, jitter.rotation))
    dx, dy = (rng.uniform(-jitter.shift, jitter.shift, size=2) * canvas).tolist()
    font = ImageFont.truetype(str(font_path), glyph_px)
    layer = Image.new("L", (canvas, canvas), 0)  # ink mask: 255 = ink
    draw = ImageDraw.Draw(layer)
    draw.text((canvas / 2, canvas / 2), str(digit), font=font, fill=255, anchor="mm",
              stroke_width=stroke, stroke_fill=255)
    layer = layer.rotate(angle, resample=Image.BILINEAR, translate=(dx, dy))
    layer = layer.resize((size, size), resample=Image.LANCZOS)
    return 255 - np.asarray(layer, dtype=np.uint8)


def check_digits(family: str, paths: list[Path], size: int) -> None:
    """Fail if a font lacks real glyphs for 0-9 (blank or the .notdef box)."""
    for path in paths:
        font = ImageFont.truetype(str(path), size)
        renders = []
        for ch in "0123456789\uffff":
            img = Image.new("L", (size * 2, size * 2), 255)
            ImageDraw.Draw(img).text((size, size), ch, font=font, fill=0, anchor="mm")
            renders.append(np.asarray(img).tobytes())
        blank = Image.new("L", (size * 2, size * 2), 255).tobytes()
        if any(r == blank or r == renders[-1] for r in renders[:10]) or len(set(renders[:10])) < 10:
            raise RTDError(f"font family {family!r} ({path.name}) has no distinct glyphs for all digits 0-9: "
                           "remove it from params.yaml")


def render_split(families: dict[str, list[Path]], renders_per_digit: int, size: int,
                 jitter: RenderJitter, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Render every family x digit x render; return images (N,1,H,W), labels (N,), family per image."""
    images, labels, fams = [], [], []
    for family, paths in families.items():
        for digit in range(10):
            for _ in range(renders_per_digit):
                path = paths[int(rng.integers(len(paths)))]
                images.append(render_digit(path, digit, size, jitter, rng))
                labels.append(digit)
                fams.append(family)
    return np.stack(images)[:, None], np.asarray(labels, dtype=np.int64), fams


def sklearn_digits(size: int) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's 1,797 real handwritten 8x8 digits, upsampled and turned dark-on-white like the renders."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    out = []
    for img in digits.images:
        ink = Image.fromarray(np.uint8(np.round(img / 16.0 * 255)))
        # pad by one cell so strokes do not touch the border, as the renders do not
        padded = Image.new("L", (10, 10), 0)
        padded.paste(ink, (1, 1))
        out.append(255 - np.asarray(padded.resize((size, size), resample=Image.BICUBIC), dtype=np.uint8))
    return np.stack(out)[:, None], digits.target.astype(np.int64)


def file_digest(paths: list[Path]) -> str:
    """sha256 over the font files of a family, recorded in the manifest so a font update is visible."""
    h = hashlib.sha256()
    for p in paths:
        h.update(p.read_bytes())
    return h.hexdigest()[:16]


DOWNSTREAM_GROUPS = ("printed", "handwriting_val", "handwriting_test", "decorative")
PRETRAIN_GROUPS = ("printed", "handwriting", "decorative")   # under `data.pretrain`


def add_shortcut(images: np.ndarray, labels: np.ndarray, p: float, size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A class-correlated shortcut: a dark ``size`` x ``size`` square at one of 10 positions along the top edge.

    With probability ``p`` the square sits at the position of the image's own label, otherwise at the position
    of a uniformly drawn class (which may be the label), so the mark predicts the label with probability
    p + (1 - p) / 10. Returns the marked copy and the class whose position was marked; ``p = 0`` marks nothing
    (the images are returned unchanged and the classes are -1). Pure: the same arguments give the same bytes.
    """
    if p == 0:
        return images.copy(), np.full(len(labels), -1, dtype=np.int64)
    height, width = images.shape[-2:]
    step = (width - 2) // 10
    if step < size:
        raise RTDError(f"`data.shortcut.size` = {size} is too large for {width}-pixel images: 10 marks of it must fit "
                       f"along the top edge (at most {step})")
    rng = np.random.default_rng(seed)
    marked = np.where(rng.random(len(labels)) < p, labels, rng.integers(0, 10, len(labels))).astype(np.int64)
    out = images.copy()
    for i, c in enumerate(marked):
        left = 1 + step * int(c)
        out[i, :, 1:1 + size, left:left + size] = 0
    return out, marked


def add_texture(images: np.ndarray, contrast: float, cycles: tuple[float, float], seed) -> np.ndarray:
    """The ID nuisance: a sinusoidal grating multiplied into every image, darkening it by up to ``contrast``.

    Each image gets its own orientation (uniform in [0, pi)), phase (uniform in [0, 2 pi)) and spatial frequency
    (uniform in ``cycles`` cycles per image width); pixel v becomes round(v * (1 - contrast * g)) with
    g = (1 + sin(...)) / 2 in [0, 1]. ``contrast = 0`` returns an unchanged copy. Pure: the same arguments
    (``seed`` is anything ``np.random.default_rng`` takes) give the same bytes.
    """
    if contrast == 0:
        return images.copy()
    n, height, width = len(images), *images.shape[-2:]
    rng = np.random.default_rng(seed)
    theta, phase = rng.uniform(0, np.pi, n), rng.uniform(0, 2 * np.pi, n)
    freq = 2 * np.pi * rng.uniform(cycles[0], cycles[1], n) / width
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    arg = freq[:, None, None] * (np.cos(theta)[:, None, None] * xx + np.sin(theta)[:, None, None] * yy) + phase[:, None, None]
    grating = 0.5 + 0.5 * np.sin(arg)
    out = images.astype(np.float64) * (1.0 - contrast * grating[:, None])
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


ID_SPLITS = ("train_clean", "id_val", "id_test")   # the splits of the ID distribution (train is train_clean + shortcut)


def family_groups(data: dict) -> dict[str, list[str]]:
    """Every family list of ``params['data']`` by its params key (`printed`, ..., `pretrain.printed`, ...)."""
    groups = {g: list(data[g]) for g in DOWNSTREAM_GROUPS}
    groups.update({f"pretrain.{g}": list(data["pretrain"][g]) for g in PRETRAIN_GROUPS})
    return groups


def _render_group(split: str, group: str, fams: dict[str, list[Path]], n: int, size: int, jitter: RenderJitter,
                  seed: int) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Render one (split, family group) with its own random stream, so no group's renders depend on another's."""
    key = int.from_bytes(hashlib.sha256(f"{split}/{group}".encode()).digest()[:4], "little")
    return render_split(fams, n, size, jitter, np.random.default_rng([seed, key]))


def build_font_benchmark(data: dict) -> tuple[dict[str, "Split"], dict]:
    """Render every split of the benchmark from ``params['data']``; return the splits and a manifest.

    Downstream: train / id_val / id_test (the narrow ID families, `printed`, under the ID texture
    `data.id_texture`), ood_val (handwriting_val) and ood_test (handwriting_test, decorative, scikit-learn's
    digits), never textured. The class-correlated shortcut
    (`data.shortcut`) is drawn on `train` only; `train_clean` holds the same renders without it (the
    erosion study's candidates draw their own shortcut on it). Pretraining: `pretrain` / `pretrain_val`,
    renders of the broad corpus `data.pretrain` (families disjoint from every downstream split), which
    the `pretrain` stage trains the foundation model on.
    """
    from tqdm import tqdm

    from ...data.splits import Split

    size = data["image_size"]
    render = data["render"]
    jitter = RenderJitter(tuple(render["scale"]), render["shift"], render["rotation"], tuple(render["stroke"]))
    installed = discover_families(data["font_dirs"])
    groups = {g: resolve_families(names, installed, g) for g, names in family_groups(data).items()}
    for fams in groups.values():
        for family, paths in fams.items():
            check_digits(family, paths, 32)

    counts, pre_counts = data["renders_per_digit"], data["pretrain"]["renders_per_digit"]
    plan = [  # (split, domain, family group, renders per digit)
        ("train_clean", "printed", "printed", counts["train"]),
        ("id_val", "printed", "printed", counts["id_val"]),
        ("id_test", "printed", "printed", counts["id_test"]),
        ("ood_val", "handwriting", "handwriting_val", counts["handwriting_val"]),
        ("ood_test", "handwriting", "handwriting_test", counts["handwriting_test"]),
        ("ood_test", "decorative", "decorative", counts["decorative"]),
        *((split, g, f"pretrain.{g}", pre_counts[g] if split == "pretrain" else pre_counts["val"])
          for split in ("pretrain", "pretrain_val") for g in PRETRAIN_GROUPS),
    ]
    parts: dict[str, list[tuple[str, str, np.ndarray, np.ndarray]]] = {}  # split -> (domain, source, x, y)
    manifest: dict = {"image_size": size, "splits": {}, "families": {}}
    for split, domain, group, n in tqdm(plan, desc="render", unit="group"):
        images, labels, _ = _render_group(split, group, groups[group], n, size, jitter, data["seed"])
        parts.setdefault(split, []).append((domain, f"data.{group}", images, labels))
        manifest["families"][group] = {f: {"files": [p.name for p in paths], "sha256": file_digest(paths)}
                                       for f, paths in groups[group].items()}
    if data["sklearn_digits"]:
        images, labels = sklearn_digits(size)
        parts["ood_test"].append(("sklearn_digits", "sklearn.datasets.load_digits", images, labels))
    tex = data["id_texture"]
    for split in ID_SPLITS:   # the ID distribution's nuisance: never on OOD or pretraining renders
        key = int.from_bytes(hashlib.sha256(f"texture/{split}".encode()).digest()[:4], "little")
        domain, source, images, labels = parts[split][0]
        parts[split][0] = (domain, source, add_texture(images, tex["contrast"], tuple(tex["cycles"]),
                                                       [data["seed"], key]), labels)
    sc = data["shortcut"]
    domain, source, images, labels = parts["train_clean"][0]
    marked, mark_class = add_shortcut(images, labels, sc["p"], sc["size"], data["seed"])
    parts["train"] = [(domain, source, marked, labels)]

    splits = {}
    for split, chunks in parts.items():
        splits[split] = Split(
            images=np.concatenate([c[2] for c in chunks]),
            labels=np.concatenate([c[3] for c in chunks]),
            domains=np.concatenate([np.full(len(c[3]), i, dtype=np.int64) for i, c in enumerate(chunks)]),
            domain_names=[c[0] for c in chunks],
        )
        manifest["splits"][split] = {
            "n": len(splits[split]),
            "domains": {domain: {"n": len(y), "source": source} for domain, source, _, y in chunks},
        }
    manifest["id_texture"] = {"contrast": tex["contrast"], "cycles": list(tex["cycles"]),
                              "splits": ["train", *ID_SPLITS]}
    marked_any = mark_class >= 0
    manifest["shortcut"] = {"p": sc["p"], "size": sc["size"], "split": "train",
                            "marked": int(marked_any.sum()),
                            "mark_is_label": round(float((mark_class[marked_any] == labels[marked_any]).mean()), 6)
                            if marked_any.any() else None}
    return splits, manifest
