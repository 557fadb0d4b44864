#!/usr/bin/env python3
"""From raw recordings to the .npy features `vavl corpus import` reads.

Audio: decoded (PyAV), downmixed to mono, resampled to 16 kHz, through a wav2vec2-family
checkpoint (a local folder or a Hugging Face hub name); one hidden layer per frame at the
model's frame rate (50/s). Video: decoded (PyAV), resampled to --video-fps, the face
detected per frame (OpenCV's bundled Haar cascade), the box smoothed over time, cropped,
resized and passed through EfficientNet-B2 (torchvision); the pooled 1408-d vector per frame.

    extract.py RECORDINGS... --out OUT --audio-model MODEL [--labels CSV]
               [--video-model B2.pth] [--import CORPUS.h5 --task categorical]

Writes OUT/audio/<id>.npy, OUT/video/<id>.npy (float32, frames x dims), OUT/boxes/<id>.npy
(the face box per video frame), OUT/labels.csv (the label rows of the utterances extracted
in full), OUT/manifest.json, and OUT/meta/ (one record per utterance; it makes runs
resumable). See Scripts/extract/README.md.
"""
from __future__ import annotations

import argparse
import csv
import datetime
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

import numpy as np

AUDIO_EXTS = {".wav", ".flac"}
VIDEO_EXTS = {".mp4", ".avi", ".flv", ".mkv", ".mov", ".webm"}
SAMPLE_RATE = 16000
MANIFEST_FORMAT = "vavl-extract-manifest"
MANIFEST_VERSION = 1
TORCHVISION_B2 = "torchvision:EfficientNet_B2_Weights.IMAGENET1K_V1"
IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)


def log(*args):
    print("extract:", *args, file=sys.stderr, flush=True)


_COMM = None  # the MPI communicator under mpirun: an unexpected error on one rank aborts all


class ExtractError(Exception):
    """A problem with one input file: reported in the manifest, the run goes on."""


# ----------------------------------------------------------------------------- files


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            b = f.read(chunk)
            if not b:
                break
            h.update(b)
    return h.hexdigest()


def atomic_write_bytes(path: Path, data: bytes):
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix="." + path.name + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def atomic_save_npy(path: Path, array: np.ndarray):
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(array), allow_pickle=False)
    atomic_write_bytes(path, buf.getvalue())


def atomic_write_json(path: Path, obj):
    atomic_write_bytes(path, (json.dumps(obj, indent=1, sort_keys=False) + "\n").encode())


def npy_shape(path: Path):
    """The shape of a complete .npy file, or None if it is missing or unreadable."""
    try:
        a = np.load(path, mmap_mode="r", allow_pickle=False)
        return list(a.shape)
    except Exception:
        return None


# ----------------------------------------------------------------------------- inputs


@dataclass
class Utterance:
    id: str
    audio_file: Path | None = None  # a .wav/.flac
    video_file: Path | None = None  # a video container (may carry the audio too)
    audio_source: Path | None = None  # the file the audio is decoded from
    has_video: bool = False
    audio_seconds: float | None = None


def utterance_id(name: str) -> str:
    p = Path(name)
    return p.stem if p.suffix.lower() in AUDIO_EXTS | VIDEO_EXTS else p.name


def scan_recordings(folders: list[Path]) -> tuple[dict[str, Utterance], list[dict]]:
    utts: dict[str, Utterance] = {}
    problems = []
    for folder in folders:
        if folder.is_file():
            files = [folder]
        elif folder.is_dir():
            files = sorted(p for p in folder.rglob("*") if p.is_file())
        else:
            raise SystemExit(f"extract: {folder}: no such file or folder")
        for p in files:
            ext = p.suffix.lower()
            if ext not in AUDIO_EXTS | VIDEO_EXTS or p.name.startswith("."):
                continue
            u = utts.setdefault(p.stem, Utterance(p.stem))
            slot = "audio_file" if ext in AUDIO_EXTS else "video_file"
            if getattr(u, slot) is not None:
                problems.append({"id": p.stem, "file": str(p), "modality": slot.split("_")[0],
                                 "error": f"duplicate recording (also {getattr(u, slot)}); this one is ignored"})
                continue
            setattr(u, slot, p)
    return utts, problems


def read_labels(path: Path) -> tuple[list[str], list[dict]]:
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        if reader.fieldnames is None or "FileName" not in reader.fieldnames:
            raise SystemExit(f"extract: {path}: the label CSV needs a FileName column (the authors' layout: "
                             "FileName, label columns, SpkrID, Gender, Split_Set)")
        return list(reader.fieldnames), list(reader)


def probe(u: Utterance, want_audio: bool, want_video: bool):
    """Which wanted streams the utterance has, and its audio duration (to batch by length).
    Audio comes from the .wav/.flac when there is one, else from the video's audio track."""
    import av
    u.audio_source, u.has_video, u.audio_seconds = None, False, None
    if u.video_file is not None and (want_video or (want_audio and u.audio_file is None)):
        try:
            with av.open(str(u.video_file)) as c:
                has_v, has_a = len(c.streams.video) > 0, len(c.streams.audio) > 0
                if want_audio and u.audio_file is None and has_a:
                    u.audio_source = u.video_file
                    u.audio_seconds = _audio_seconds(c)
        except Exception as e:
            raise ExtractError(f"cannot open {u.video_file.name}: {e}") from e
        if want_video and not has_v:
            raise ExtractError(f"{u.video_file.name} has no video stream")
        u.has_video = want_video and has_v
    if want_audio and u.audio_file is not None:
        try:
            with av.open(str(u.audio_file)) as c:
                has_a = len(c.streams.audio) > 0
                if has_a:
                    u.audio_source = u.audio_file
                    u.audio_seconds = _audio_seconds(c)
        except Exception as e:
            raise ExtractError(f"cannot open {u.audio_file.name}: {e}") from e
        if not has_a:
            raise ExtractError(f"{u.audio_file.name} has no audio stream")
    if u.audio_source is None and not u.has_video:
        raise ExtractError("no audio or video stream to extract")


def _audio_seconds(container) -> float:
    s = container.streams.audio[0]
    if s.duration is not None and s.time_base is not None:
        return float(s.duration * s.time_base)
    if container.duration is not None:
        return container.duration / 1e6
    return 0.0


# ----------------------------------------------------------------------------- audio


def decode_audio(path: Path) -> np.ndarray:
    """Mono float32 at 16 kHz: the channels are averaged after resampling (swresample)."""
    import av
    chunks = []
    try:
        with av.open(str(path)) as c:
            stream = c.streams.audio[0]
            resampler = av.AudioResampler(format="fltp", rate=SAMPLE_RATE)
            for frame in c.decode(stream):
                for out in resampler.resample(frame):
                    chunks.append(out.to_ndarray())
            for out in resampler.resample(None):
                chunks.append(out.to_ndarray())
    except Exception as e:
        raise ExtractError(f"cannot decode audio of {path.name}: {e}") from e
    if not chunks:
        raise ExtractError(f"no audio samples in {path.name}")
    x = np.concatenate(chunks, axis=1).astype(np.float32)
    x = x.mean(axis=0)
    if not np.all(np.isfinite(x)):
        raise ExtractError(f"non-finite audio samples in {path.name}")
    return x


def resolve_hub_model(name: str) -> Path:
    path = Path(name).expanduser()
    if path.is_dir():
        return path
    if path.exists() or name.startswith((".", "/", "~")):
        raise SystemExit(f"extract: --audio-model {name}: not a model folder (config.json + weights)")
    try:
        from huggingface_hub import snapshot_download
        local = snapshot_download(name, allow_patterns=["*.json", "*.safetensors", "*.bin", "*.txt"])
    except Exception as e:
        raise SystemExit(f"extract: --audio-model {name}: cannot fetch it from the Hugging Face hub ({type(e).__name__}: "
                         f"{str(e).splitlines()[0] if str(e) else ''}). Download it where the hub is reachable "
                         f"(`hf download {name} --local-dir DIR`) and pass --audio-model DIR.")
    return Path(local)


def model_files_hashes(folder: Path) -> dict[str, str]:
    out = {}
    for p in sorted(folder.rglob("*")):
        if p.is_file() and not p.name.startswith(".") and p.suffix in {".json", ".safetensors", ".bin", ".txt", ".pt", ".pth"}:
            out[str(p.relative_to(folder))] = sha256_file(p)
    return out


def combined_hash(parts: dict) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


class AudioEncoder:
    def __init__(self, folder: Path, layer: int, device: str):
        import torch
        from transformers import AutoConfig, AutoModel
        from transformers.utils import logging as hf_logging
        hf_logging.disable_progress_bar()
        self.torch = torch
        config = AutoConfig.from_pretrained(folder)
        # AutoModel maps a wav2vec2-family config (wav2vec2, hubert, wavlm, data2vec-audio,
        # wav2vec2-conformer, ...) to its base model; checkpoints fine-tuned with a head
        # (e.g. ...ForSequenceClassification) load their encoder and drop the head.
        self.model = AutoModel.from_pretrained(folder, config=config).to(device).eval()
        self.device = device
        self.config = config
        n_layers = config.num_hidden_layers
        if not -(n_layers + 1) <= layer <= n_layers:
            raise SystemExit(f"extract: --audio-layer {layer}: the model has hidden states 0…{n_layers} "
                             f"(0 = the feature projection, {n_layers} = the last layer; negative counts from the end)")
        self.layer = layer if layer >= 0 else n_layers + 1 + layer
        self.n_layers = n_layers
        self.hidden_size = config.hidden_size
        strides = getattr(config, "conv_stride", [5, 2, 2, 2, 2, 2, 2])
        self.hop = int(np.prod(strides))
        self.receptive = self._receptive_field(config)
        self.frame_rate = SAMPLE_RATE / self.hop
        # Padding changes the output of models with group norm in the feature encoder (the
        # base models); only layer-norm models (large, large-robust) take an attention mask.
        self.batchable = getattr(config, "feat_extract_norm", "group") == "layer"
        self.normalize = True
        try:
            from transformers import AutoFeatureExtractor
            fe = AutoFeatureExtractor.from_pretrained(folder)
            self.normalize = bool(getattr(fe, "do_normalize", True))
            sr = getattr(fe, "sampling_rate", SAMPLE_RATE)
            if sr != SAMPLE_RATE:
                raise SystemExit(f"extract: the audio model expects {sr} Hz; only {SAMPLE_RATE} Hz models are supported")
        except SystemExit:
            raise
        except Exception:
            pass  # no preprocessor_config.json: wav2vec2's default, zero mean and unit variance

    @staticmethod
    def _receptive_field(config) -> int:
        r, jump = 1, 1
        for k, s in zip(getattr(config, "conv_kernel", [10, 3, 3, 3, 3, 2, 2]), getattr(config, "conv_stride", [5, 2, 2, 2, 2, 2, 2])):
            r += (k - 1) * jump
            jump *= s
        return r

    def frames_for(self, n_samples: int) -> int:
        return int(self.model._get_feat_extract_output_lengths(self.torch.tensor(n_samples)).item())

    def encode(self, waves: list[np.ndarray]) -> list[np.ndarray]:
        torch = self.torch
        waves = [w if len(w) >= self.receptive else np.pad(w, (0, self.receptive - len(w))) for w in waves]
        if self.normalize:
            waves = [(w - w.mean()) / np.sqrt(w.var() + 1e-7) for w in waves]
        lengths = [len(w) for w in waves]
        batch = np.zeros((len(waves), max(lengths)), dtype=np.float32)
        mask = np.zeros_like(batch, dtype=np.int64)
        for i, w in enumerate(waves):
            batch[i, : len(w)] = w
            mask[i, : len(w)] = 1
        with torch.inference_mode():
            kwargs = {"output_hidden_states": True}
            if self.batchable and len(waves) > 1:
                kwargs["attention_mask"] = torch.from_numpy(mask).to(self.device)
            out = self.model(torch.from_numpy(batch).to(self.device), **kwargs)
            # the last layer is the model's output (with the final layer norm of large /
            # large-robust models, which hidden_states[-1] lacks in some transformers versions)
            h = out.last_hidden_state if self.layer == self.n_layers else out.hidden_states[self.layer]
            hidden = h.float().cpu().numpy()
        return [np.ascontiguousarray(hidden[i, : self.frames_for(n)], dtype=np.float32) for i, n in enumerate(lengths)]


# ----------------------------------------------------------------------------- video


def iter_video_frames(path: Path, fps: float):
    """RGB frames resampled to `fps`: output frame k (time k/fps) is the last input frame
    starting at or before that time, so a clip of d seconds gives round(d * fps) frames."""
    import av
    try:
        with av.open(str(path)) as c:
            stream = c.streams.video[0]
            stream.thread_type = "AUTO"
            rate = float(stream.average_rate or stream.guessed_rate or 25)
            start = None
            prev = None  # (time, rgb)
            k = 0
            last_t = None
            for frame in c.decode(stream):
                t = frame.time if frame.time is not None else (0 if last_t is None else last_t + 1 / rate)
                if start is None:
                    start = t
                t -= start
                last_t = t
                rgb = frame.to_ndarray(format="rgb24")
                if prev is not None:
                    while k / fps < t - 1e-6:
                        yield prev[1]
                        k += 1
                prev = (t, rgb)
            if prev is None:
                raise ExtractError(f"no video frames in {path.name}")
            end = last_t + 1 / rate  # the last frame lasts one frame period
            n_total = max(1, int(round(end * fps)))
            while k < n_total:
                yield prev[1]
                k += 1
    except ExtractError:
        raise
    except Exception as e:
        raise ExtractError(f"cannot decode video {path.name}: {e}") from e


class FaceTracker:
    """OpenCV's frontal-face Haar cascade (its XML ships inside opencv-python-headless)."""

    def __init__(self, detect_width: int = 480, every: int = 1):
        import cv2
        self.cv2 = cv2
        self.file = Path(cv2.data.haarcascades) / "haarcascade_frontalface_default.xml"
        self.cascade = cv2.CascadeClassifier(str(self.file))
        if self.cascade.empty():
            raise SystemExit(f"extract: cannot load the face detector {self.file}")
        self.detect_width = detect_width
        self.every = max(1, every)

    def detect(self, rgb: np.ndarray, previous):
        """The face box (x0, y0, x1, y1) in pixels, or None: the largest face, or the
        one nearest the previous box when there is one."""
        cv2 = self.cv2
        h, w = rgb.shape[:2]
        scale = min(1.0, self.detect_width / max(h, w))
        gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
        if scale < 1:
            gray = cv2.resize(gray, (int(round(w * scale)), int(round(h * scale))), interpolation=cv2.INTER_AREA)
        gray = cv2.equalizeHist(gray)
        m = max(20, int(0.08 * min(gray.shape)))
        faces = self.cascade.detectMultiScale(gray, scaleFactor=1.1, minNeighbors=5, minSize=(m, m))
        if len(faces) == 0:
            return None
        boxes = [np.array([x, y, x + bw, y + bh], dtype=np.float64) / scale for (x, y, bw, bh) in faces]
        if previous is not None:
            pc = (previous[:2] + previous[2:]) / 2
            return min(boxes, key=lambda b: np.linalg.norm((b[:2] + b[2:]) / 2 - pc) - 0.5 * (b[2] - b[0]))
        return max(boxes, key=lambda b: (b[2] - b[0]) * (b[3] - b[1]))


def fill_and_smooth(boxes: list, window: int):
    """Frames with no face keep the previous box; frames before the first detection take
    the first box; then a centred moving average over `window` frames. None if no face."""
    found = [b for b in boxes if b is not None]
    if not found:
        return None
    filled = []
    current = found[0]
    for b in boxes:
        if b is not None:
            current = b
        filled.append(current)
    a = np.stack(filled)
    if window > 1 and len(a) > 1:
        half = window // 2
        padded = np.concatenate([np.repeat(a[:1], half, 0), a, np.repeat(a[-1:], half, 0)])
        kernel = np.ones(2 * half + 1) / (2 * half + 1)
        a = np.stack([np.convolve(padded[:, j], kernel, mode="valid") for j in range(4)], axis=1)
    return a


def square_crop_box(box, width: int, height: int, margin: float):
    """A square around the face box, enlarged by `margin` of its size on each side, moved
    (and if need be shrunk) to lie inside the frame."""
    x0, y0, x1, y1 = box
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    side = max(x1 - x0, y1 - y0) * (1 + 2 * margin)
    side = max(1, min(int(round(side)), width, height))
    sx = min(max(int(round(cx - side / 2)), 0), width - side)
    sy = min(max(int(round(cy - side / 2)), 0), height - side)
    return sx, sy, sx + side, sy + side


def centre_box(width: int, height: int):
    side = min(width, height)
    return np.array([(width - side) / 2, (height - side) / 2, (width + side) / 2, (height + side) / 2], dtype=np.float64)


class VideoEncoder:
    def __init__(self, weights: str | None, device: str, size: int):
        import torch
        import torchvision
        self.torch = torch
        model = torchvision.models.efficientnet_b2(weights=None)
        if weights is None:
            from torchvision.models import EfficientNet_B2_Weights
            w = EfficientNet_B2_Weights.IMAGENET1K_V1
            try:
                state = w.get_state_dict(progress=False, check_hash=True)
            except Exception as e:
                raise SystemExit(f"extract: cannot fetch torchvision's EfficientNet-B2 ImageNet weights ({type(e).__name__}: {e}). "
                                 f"Download {w.url} where it is reachable and pass --video-model FILE.")
            self.file = Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(w.url)
        else:
            self.file = Path(weights)
            state = load_state_dict(self.file)
        missing, unexpected = model.load_state_dict(state, strict=False)
        missing = [k for k in missing if not k.startswith("classifier.")]
        if missing or unexpected:
            raise SystemExit(f"extract: {self.file} is not an EfficientNet-B2 state dict (torchvision names): "
                             f"missing {missing[:5]}, unexpected {unexpected[:5]}")
        self.model = model.to(device).eval()
        self.device = device
        self.size = size
        self.dim = model.classifier[-1].in_features  # 1408

    def encode(self, crops: np.ndarray) -> np.ndarray:
        """crops: uint8 [n, size, size, 3] RGB -> float32 [n, 1408]."""
        torch = self.torch
        x = (crops.astype(np.float32) / 255.0 - IMAGENET_MEAN) / IMAGENET_STD
        x = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2))).to(self.device)
        with torch.inference_mode():
            f = self.model.avgpool(self.model.features(x)).flatten(1)
        return f.float().cpu().numpy()


def load_state_dict(path: Path):
    import torch
    if not path.is_file():
        raise SystemExit(f"extract: --video-model {path}: no such file")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file
            state = load_file(str(path))
        else:  # weights only: a state dict of tensors, never arbitrary pickled objects
            state = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as e:
        raise SystemExit(f"extract: --video-model {path}: not a readable state dict ({type(e).__name__}: "
                         f"{str(e).splitlines()[0] if str(e) else ''})")
    if not isinstance(state, dict):
        raise SystemExit(f"extract: --video-model {path}: not a state dict")
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if isinstance(state, dict) and "model" in state and isinstance(state["model"], dict):
        state = state["model"]
    return {k.removeprefix("module."): v for k, v in state.items()}


def extract_video(u: Utterance, enc: VideoEncoder, tracker: FaceTracker, args):
    import cv2
    # pass 1: boxes (only the boxes are kept, so long high-resolution clips fit in memory)
    boxes, prev, size_hw = [], None, None
    for i, rgb in enumerate(iter_video_frames(u.video_file, args.video_fps)):
        size_hw = rgb.shape[:2]
        b = tracker.detect(rgb, prev) if i % tracker.every == 0 else None
        if b is not None:
            prev = b
        boxes.append(b)
    h, w = size_hw
    detected = sum(b is not None for b in boxes)
    smooth = fill_and_smooth(boxes, args.smooth_window)
    no_face = smooth is None
    if no_face:
        smooth = np.repeat(centre_box(w, h)[None], len(boxes), 0)
    # pass 2: crops -> EfficientNet-B2 in batches
    feats, batch, crop_boxes = [], [], []
    n = len(boxes)
    for i, rgb in enumerate(iter_video_frames(u.video_file, args.video_fps)):
        if i >= n:
            break
        x0, y0, x1, y1 = square_crop_box(smooth[i], w, h, 0.0 if no_face else args.face_margin)
        crop_boxes.append((x0, y0, x1, y1))
        crop = cv2.resize(rgb[y0:y1, x0:x1], (args.video_size, args.video_size),
                          interpolation=cv2.INTER_AREA if (x1 - x0) > args.video_size else cv2.INTER_LINEAR)
        batch.append(crop)
        if len(batch) == args.video_batch:
            feats.append(enc.encode(np.stack(batch)))
            batch = []
    if batch:
        feats.append(enc.encode(np.stack(batch)))
    if sum(len(f) for f in feats) != n:
        raise ExtractError(f"{u.video_file.name}: the second decoding gave a different frame count")
    out = np.concatenate(feats).astype(np.float32)
    # boxes file: per frame the smoothed face box (x0, y0, x1, y1, source pixels), the crop
    # actually taken, and whether the detector found a face in that frame
    found = np.array([b is not None for b in boxes], dtype=np.float32)[:, None]
    box_arr = np.concatenate([smooth.astype(np.float32), np.array(crop_boxes, dtype=np.float32), found], axis=1)
    info = {"source": str(u.video_file), "frames": int(n), "seconds": n / args.video_fps,
            "width": int(w), "height": int(h), "face_frames": int(detected), "no_face": bool(no_face)}
    return out, box_arr, info


# ----------------------------------------------------------------------------- run


def parse_shard(text: str):
    try:
        k, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError("--shard takes K/N, e.g. 0/4")
    if n < 1 or not 0 <= k < n:
        raise argparse.ArgumentTypeError("--shard K/N needs 0 <= K < N")
    return k, n


def mpi_world(args):
    """(comm, rank, size) under mpirun with several ranks, else (None, 0, 1). mpi4py is
    imported only when a launcher's environment says there are several ranks."""
    sizes = [os.environ.get(v) for v in ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE", "MPI_LOCALNRANKS")]
    if args.no_mpi or not any(s and s.isdigit() and int(s) > 1 for s in sizes):
        return None, 0, 1
    try:
        from mpi4py import MPI
    except Exception as e:
        raise SystemExit(f"extract: started by mpirun with several ranks, but mpi4py cannot be loaded ({e}); "
                         "install it (.venv-extract/bin/pip install mpi4py) or use --shard K/N with --no-mpi")
    global _COMM
    comm = MPI.COMM_WORLD
    if comm.Get_size() < 2:
        return None, 0, 1
    _COMM = comm
    return comm, comm.Get_rank(), comm.Get_size()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="Details, the manifest format and the commands for CREMA-D and MSP-IMPROV: Scripts/extract/README.md")
    ap.add_argument("recordings", nargs="+", type=Path, help="folders (searched recursively) or files: .wav/.flac audio, .mp4/.avi/.flv/.mkv/.mov/.webm video (with or without audio); an utterance is a file name without its extension")
    ap.add_argument("--out", type=Path, required=True, help="output folder")
    ap.add_argument("--labels", type=Path, help="the authors' label CSV (FileName, label columns, SpkrID, Gender, Split_Set): only its utterances are extracted, and OUT/labels.csv keeps the rows extracted in full")
    ap.add_argument("--audio-model", help="wav2vec2-family checkpoint: a local folder (config.json + weights) or a Hugging Face hub name")
    ap.add_argument("--audio-layer", type=int, default=-1, help="hidden state to output: 0 = feature projection, L = layer L, negative from the end (default -1: the last layer)")
    ap.add_argument("--audio-batch-seconds", type=float, default=60.0, help="padded audio per batch, in seconds (utterances are batched by length; default 60)")
    ap.add_argument("--video-model", help="EfficientNet-B2 weights file (torchvision state dict, .pth/.pt/.safetensors); default: torchvision's ImageNet weights (downloaded)")
    ap.add_argument("--video-fps", type=float, default=30.0, help="video frame rate of the output (default 30)")
    ap.add_argument("--video-size", type=int, default=260, help="face crop size for EfficientNet-B2 (default 260)")
    ap.add_argument("--video-batch", type=int, default=32, help="frames per EfficientNet batch (default 32)")
    ap.add_argument("--face-margin", type=float, default=0.2, help="margin around the detected face, a fraction of its size on each side (default 0.2)")
    ap.add_argument("--smooth-window", type=int, default=7, help="frames of the centred moving average of the face box (default 7; 1 = none)")
    ap.add_argument("--detect-every", type=int, default=1, help="run the face detector on every Nth frame only (default 1)")
    ap.add_argument("--no-audio", action="store_true", help="extract video only")
    ap.add_argument("--no-video", action="store_true", help="extract audio only")
    ap.add_argument("--shard", type=parse_shard, help="K/N: process the K-th (0-based) of N shares; under mpirun -np N each rank takes its own")
    ap.add_argument("--no-mpi", action="store_true", help="do not use mpi4py even under mpirun")
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"], help="torch device (default cpu)")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (default: torch's choice)")
    ap.add_argument("--chunk", type=int, default=64, help="utterances per unit of work: outputs are committed after each (default 64)")
    ap.add_argument("--force", action="store_true", help="recompute utterances whose outputs are complete")
    ap.add_argument("--progress", choices=["auto", "bar", "none"], default="auto", help="progress bar (default: on a terminal)")
    ap.add_argument("--manifest", type=Path, help="manifest path (default OUT/manifest.json)")
    ap.add_argument("--import", dest="import_to", type=Path, metavar="CORPUS.h5", help="run `vavl corpus import` at the end, writing this corpus")
    ap.add_argument("--task", choices=["categorical", "dimensional", "sentiment"], help="with --import: the task")
    ap.add_argument("--label-columns", help="with --import: passed to vavl corpus import")
    ap.add_argument("--label-range", help="with --import: passed to vavl corpus import (LO,HI)")
    ap.add_argument("--vavl", default=None, help="the vavl binary for --import (default: vavl on PATH)")
    args = ap.parse_args(argv)

    want_audio, want_video = not args.no_audio, not args.no_video
    if not (want_audio or want_video):
        ap.error("--no-audio and --no-video leave nothing to extract")
    if want_audio and not args.audio_model:
        ap.error("--audio-model is required (or --no-audio)")
    if args.import_to and not args.labels:
        ap.error("--import needs --labels")
    if args.import_to and not args.task:
        ap.error("--import needs --task")
    if args.video_fps <= 0 or args.video_size < 32 or args.video_batch < 1 or args.chunk < 1 or args.smooth_window < 1:
        ap.error("--video-fps, --video-size, --video-batch, --chunk and --smooth-window must be positive")
    vavl = None
    if args.import_to:
        vavl = args.vavl or shutil.which("vavl")
        if not vavl or not os.access(vavl, os.X_OK):
            ap.error("--import needs the vavl binary: --vavl PATH or vavl on PATH")

    comm, rank, size = mpi_world(args)
    if comm is not None and args.shard:
        ap.error("--shard and mpirun together: each rank already takes its share")
    shard = (rank, size) if comm is not None else (args.shard or (0, 1))
    if args.threads > 0:
        import torch
        torch.set_num_threads(args.threads)
    if args.device == "cuda":
        import torch
        if not torch.cuda.is_available():
            raise SystemExit("extract: --device cuda, but torch sees no CUDA device")

    out = args.out
    for d in ("audio", "video", "boxes", "meta"):
        (out / d).mkdir(parents=True, exist_ok=True)

    # models: identities (hashes) now, weights only if something is to be computed
    audio_desc, audio_dir = None, None
    if want_audio:
        audio_dir = resolve_hub_model(args.audio_model)
        files = model_files_hashes(audio_dir)
        cfg = json.loads((audio_dir / "config.json").read_text())
        audio_desc = {"model": args.audio_model, "path": str(audio_dir), "files": files, "hash": combined_hash(files),
                      "model_type": cfg.get("model_type"), "architectures": cfg.get("architectures"),
                      "layer_requested": args.audio_layer, "sample_rate": SAMPLE_RATE}
    video_desc = None
    tracker = FaceTracker(every=args.detect_every) if want_video else None
    if want_video:
        if args.video_model:
            vfile = Path(args.video_model)
            if not vfile.is_file():
                ap.error(f"--video-model {vfile}: no such file")
            vhash = sha256_file(vfile)
        else:
            vfile, vhash = None, None
        video_desc = {"model": args.video_model or TORCHVISION_B2, "architecture": "torchvision efficientnet_b2, avgpool output",
                      "sha256": vhash, "fps": args.video_fps, "input_size": args.video_size,
                      "normalisation": "ImageNet mean/std", "face_detector": "OpenCV Haar cascade " + tracker.file.name,
                      "face_detector_sha256": sha256_file(tracker.file), "opencv": __import__("cv2").__version__,
                      "face_margin": args.face_margin, "smooth_window": args.smooth_window, "detect_every": args.detect_every}

    def key(desc, fields):
        return combined_hash({f: desc.get(f) for f in fields}) if desc else None

    audio_key = key(audio_desc, ["hash", "layer_requested"])
    video_key = key(video_desc, ["model", "sha256", "fps", "input_size", "face_margin", "smooth_window", "detect_every", "face_detector_sha256"])

    # the utterances
    utts, problems = scan_recordings(args.recordings)
    label_fields, label_rows, missing_recordings, unlabelled = None, None, [], []
    if args.labels:
        label_fields, label_rows = read_labels(args.labels)
        wanted = {}
        for row in label_rows:
            uid = utterance_id(row["FileName"])
            wanted[uid] = row
            if uid not in utts:
                missing_recordings.append(uid)
        unlabelled = sorted(set(utts) - set(wanted))
        for uid in unlabelled:
            del utts[uid]
    # recordings with nothing for the modalities asked for (a .wav in a --no-audio run)
    nothing = sorted(uid for uid, u in utts.items()
                     if not ((want_video and u.video_file) or (want_audio and (u.audio_file or u.video_file))))
    ids = sorted(set(utts) - set(nothing))
    mine = ids[shard[0]::shard[1]]

    def complete(uid: str) -> bool:
        meta = out / "meta" / f"{uid}.json"
        if not meta.is_file():
            return False
        try:
            m = json.loads(meta.read_text())
        except Exception:
            return False
        for mod, want, k in (("audio", want_audio, audio_key), ("video", want_video, video_key)):
            if want and (not m.get(f"{mod}_checked") or (m.get(mod) and m.get(f"{mod}_key") != k)):
                return False
        for mod in ("audio", "video"):
            info = m.get(mod)
            if info and npy_shape(out / mod / f"{uid}.npy") != info["shape"]:
                return False
        return True

    todo = [uid for uid in mine if args.force or not complete(uid)]
    skipped = len(mine) - len(todo)
    log(f"{len(ids)} utterances ({len(mine)} in shard {shard[0]}/{shard[1]}): {skipped} already complete, {len(todo)} to extract")
    run_failures = []

    def fail(uid, modality, err, path=None):
        rec = {"id": uid, "file": str(path) if path else None, "modality": modality, "error": err}
        run_failures.append(rec)
        atomic_write_json(out / "meta" / f"{uid}.error.json", rec)
        for mod in ("audio", "video", "boxes"):
            p = out / mod / f"{uid}.npy"
            if p.exists():
                p.unlink()
        meta = out / "meta" / f"{uid}.json"
        if meta.exists():
            meta.unlink()
        log(f"FAILED {uid}: {err}")

    if todo:
        # probe (streams, durations), then units of work of similar audio length
        pending = []
        for uid in todo:
            u = utts[uid]
            try:
                probe(u, want_audio, want_video)
                pending.append(u)
            except ExtractError as e:
                fail(uid, "probe", str(e), u.video_file or u.audio_file)
        pending.sort(key=lambda u: (u.audio_seconds or 0.0, u.id))
        audio_enc = AudioEncoder(audio_dir, args.audio_layer, args.device) if want_audio and any(u.audio_source for u in pending) else None
        video_enc = VideoEncoder(args.video_model, args.device, args.video_size) if want_video and any(u.has_video for u in pending) else None
        if audio_enc:
            audio_desc.update({"num_hidden_layers": audio_enc.n_layers, "layer": audio_enc.layer, "hidden_size": audio_enc.hidden_size,
                               "frame_rate": audio_enc.frame_rate, "hop_samples": audio_enc.hop, "receptive_field_samples": audio_enc.receptive,
                               "normalise_waveform": audio_enc.normalize, "batched_with_mask": audio_enc.batchable})
        if video_enc:
            video_desc.update({"dim": video_enc.dim, "weights_file": str(video_enc.file)})
            if video_desc["sha256"] is None and video_enc.file.is_file():
                video_desc["sha256"] = sha256_file(video_enc.file)
        bar = None
        if args.progress == "bar" or (args.progress == "auto" and sys.stderr.isatty()):
            try:
                from tqdm import tqdm
                bar = tqdm(total=len(pending), unit="utt", desc=f"extract {shard[0]}/{shard[1]}" if shard[1] > 1 else "extract",
                           position=shard[0] if comm is not None else None)
            except ImportError:
                bar = None
        t_start, done = time.time(), 0
        for c0 in range(0, len(pending), args.chunk):
            chunk = pending[c0: c0 + args.chunk]
            results = {u.id: {} for u in chunk}
            alive = {u.id for u in chunk}
            # audio, batched by length (the chunk is sorted by duration)
            if audio_enc:
                waves = {}
                for u in chunk:
                    if u.audio_source is None:
                        continue
                    try:
                        waves[u.id] = decode_audio(u.audio_source)
                    except ExtractError as e:
                        fail(u.id, "audio", str(e), u.audio_source)
                        alive.discard(u.id)
                order = sorted(waves, key=lambda i: len(waves[i]))
                budget = args.audio_batch_seconds * SAMPLE_RATE
                batches, cur = [], []
                for i in order:
                    longest = max([len(waves[j]) for j in cur] + [len(waves[i])])
                    if cur and (not audio_enc.batchable or longest * (len(cur) + 1) > budget):
                        batches.append(cur)
                        cur = []
                    cur.append(i)
                if cur:
                    batches.append(cur)
                for b in batches:
                    try:
                        feats = audio_enc.encode([waves[i] for i in b])
                    except Exception as e:  # e.g. out of memory on one long batch: retry one by one
                        feats = []
                        for i in b:
                            try:
                                feats.append(audio_enc.encode([waves[i]])[0])
                            except Exception as e1:
                                feats.append(None)
                                fail(i, "audio", f"audio model failed: {type(e1).__name__}: {e1}", utts[i].audio_source)
                                alive.discard(i)
                    for i, f in zip(b, feats):
                        if f is None:
                            continue
                        atomic_save_npy(out / "audio" / f"{i}.npy", f)
                        results[i]["audio"] = {"source": str(utts[i].audio_source), "samples": int(len(waves[i])),
                                               "seconds": len(waves[i]) / SAMPLE_RATE, "frames": int(f.shape[0]), "shape": list(f.shape)}
                del waves
            # video, one utterance at a time
            for u in chunk:
                if u.id not in alive:
                    continue
                if video_enc and u.has_video:
                    try:
                        f, boxes, info = extract_video(u, video_enc, tracker, args)
                        atomic_save_npy(out / "video" / f"{u.id}.npy", f)
                        atomic_save_npy(out / "boxes" / f"{u.id}.npy", boxes)
                        info["shape"] = list(f.shape)
                        results[u.id]["video"] = info
                        if info["no_face"]:
                            log(f"no face found in {u.video_file.name}: centre crop used")
                    except ExtractError as e:
                        fail(u.id, "video", str(e), u.video_file)
                        alive.discard(u.id)
                    except Exception as e:
                        fail(u.id, "video", f"{type(e).__name__}: {e}", u.video_file)
                        alive.discard(u.id)
            # commit: the meta record is written last; it is what makes an utterance complete
            for u in chunk:
                if u.id in alive:
                    r = results[u.id]
                    meta = {"id": u.id}
                    old = {}
                    try:
                        old = json.loads((out / "meta" / f"{u.id}.json").read_text())
                    except Exception:
                        pass
                    for mod, want, k in (("audio", want_audio, audio_key), ("video", want_video, video_key)):
                        if want:  # checked in this run: the features, or None when there is no such stream
                            meta.update({f"{mod}_checked": True, f"{mod}_key": k if mod in r else None, mod: r.get(mod)})
                        else:  # not asked for in this run: keep what an earlier run made
                            meta.update({f"{mod}_checked": old.get(f"{mod}_checked", False),
                                         f"{mod}_key": old.get(f"{mod}_key"), mod: old.get(mod)})
                    atomic_write_json(out / "meta" / f"{u.id}.json", meta)
                    err = out / "meta" / f"{u.id}.error.json"
                    if err.exists():
                        err.unlink()
                done += 1
                if bar:
                    bar.update(1)
            if not bar:
                el = time.time() - t_start
                log(f"{done}/{len(pending)} utterances, {el:.0f} s")
        if bar:
            bar.close()

    if comm is not None:
        comm.Barrier()
    if rank != 0:
        return 0 if not run_failures else 3

    # manifest and labels.csv over everything in OUT (all shards)
    utter_meta, failures = {}, []
    for uid in ids:
        mp = out / "meta" / f"{uid}.json"
        ep = out / "meta" / f"{uid}.error.json"
        if mp.is_file() and complete(uid):
            m = json.loads(mp.read_text())
            utter_meta[uid] = {k: m[k] for k in ("audio", "video")}
        elif ep.is_file():
            failures.append(json.loads(ep.read_text()))
    failures += problems
    not_done = [uid for uid in ids if uid not in utter_meta and not (out / "meta" / f"{uid}.error.json").is_file()]
    manifest = {
        "format": MANIFEST_FORMAT, "version": MANIFEST_VERSION,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": [sys.argv[0]] + (argv if argv is not None else sys.argv[1:]),
        "software": software_versions(),
        "device": args.device,
        "audio": audio_desc, "video": video_desc,
        "labels": str(args.labels) if args.labels else None,
        "counts": {"recordings": len(ids) + len(nothing), "complete": len(utter_meta), "failed": len(failures),
                   "not_yet_extracted": len(not_done), "no_face": 0,
                   "labels_without_recording": len(missing_recordings), "recordings_without_label": len(unlabelled),
                   "nothing_to_extract": len(nothing)},
        "utterances": utter_meta,
        "no_face": sorted(uid for uid, m in utter_meta.items() if m.get("video") and m["video"].get("no_face")),
        "failures": failures,
        "not_yet_extracted": not_done,
        "labels_without_recording": missing_recordings,
        "recordings_without_label": unlabelled,
        "nothing_to_extract": nothing,
    }
    manifest["counts"]["no_face"] = len(manifest["no_face"])
    if audio_desc and "frame_rate" not in audio_desc:  # nothing computed in this run: take it from the model config
        cfg = json.loads((audio_dir / "config.json").read_text())
        hop = int(np.prod(cfg.get("conv_stride", [5, 2, 2, 2, 2, 2, 2])))
        audio_desc.update({"frame_rate": SAMPLE_RATE / hop, "hidden_size": cfg.get("hidden_size")})
    for uid in nothing:  # e.g. audio-only utterances in a --no-audio run: what earlier runs made
        if complete(uid):
            utter_meta[uid] = {k: json.loads((out / "meta" / f"{uid}.json").read_text())[k] for k in ("audio", "video")}
    if args.labels:
        keep = [row for row in label_rows if utterance_id(row["FileName"]) in utter_meta]
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=label_fields, lineterminator="\n")
        w.writeheader()
        w.writerows(keep)
        atomic_write_bytes(out / "labels.csv", buf.getvalue().encode())
    atomic_write_json(args.manifest or out / "manifest.json", manifest)
    c = manifest["counts"]
    log(f"complete {c['complete']}/{c['recordings']}, failed {c['failed']}, no face {c['no_face']}, "
        f"not yet extracted {c['not_yet_extracted']}; manifest {args.manifest or out / 'manifest.json'}")

    if args.import_to:
        if not_done:
            log(f"--import skipped: {len(not_done)} utterances are not extracted yet (other shards?)")
            return 4
        cmd = [vavl, "corpus", "import", "--labels", str(out / "labels.csv"), "--audio", str(out / "audio"),
               "--video", str(out / "video"), "--task", args.task, "--output", str(args.import_to),
               "--video-fps", f"{args.video_fps:g}"]
        if audio_desc:
            cmd += ["--audio-fps", f"{audio_desc['frame_rate']:g}"]
        if args.label_columns:
            cmd += ["--label-columns", args.label_columns]
        if args.label_range:
            cmd += ["--label-range", args.label_range]
        log("running " + " ".join(cmd))
        r = subprocess.run(cmd)
        if r.returncode != 0:
            log(f"vavl corpus import failed (exit {r.returncode})")
            return 5
    return 3 if failures else 0


def software_versions():
    out = {"python": sys.version.split()[0], "numpy": np.__version__}
    for name in ("torch", "torchvision", "transformers", "av", "cv2"):
        mod = sys.modules.get(name)
        if mod is None:
            try:
                mod = __import__(name)
            except Exception:
                continue
        out["opencv" if name == "cv2" else name] = getattr(mod, "__version__", None)
    return out


def _entry():
    try:
        return main()  # a normal return, whatever its status, ends every rank on its own
    except KeyboardInterrupt:
        log("interrupted: completed utterances are kept; run again to resume")
        failure = 130
    except SystemExit as e:  # a usage or setup error, already explained
        if _COMM is None or e.code in (0, None):
            raise
        print(e.code if isinstance(e.code, str) else "", file=sys.stderr, flush=True)
        failure = e.code if isinstance(e.code, int) else 1
    except BaseException:
        if _COMM is None:
            raise
        traceback.print_exc()
        failure = 1
    if _COMM is not None:  # the other ranks would wait at the final barrier for ever
        _COMM.Abort(failure)
    return failure


if __name__ == "__main__":
    sys.exit(_entry())
