"""Tests of Scripts/extract/extract.py (run by Scripts/extract/test.sh).

No weights are downloaded: a tiny randomly initialised Wav2Vec2Model (saved with
save_pretrained, loaded back through --audio-model FOLDER, the path a downloaded checkpoint
takes) and a randomly initialised torchvision EfficientNet-B2 (state dict file, loaded through
--video-model). Media are made here: speech from espeak-ng (a synthetic voiced tone when it
is missing), videos from scikit-image's astronaut photograph moved and scaled over a
background, encoded with PyAV (mpeg4 in .avi, flv1 in .flv, mpeg4 + AAC in .mp4).
"""
from __future__ import annotations

import csv
import hashlib
import json
import os
import shutil
import subprocess
import sys
import wave
from pathlib import Path

import numpy as np
import pytest

HERE = Path(__file__).resolve().parent
EXTRACT = HERE / "extract.py"
sys.path.insert(0, str(HERE))
import extract  # noqa: E402

W, H = 480, 360  # test video size
HIDDEN = 32  # tiny wav2vec2 hidden size

# What the recordings folder holds (id -> description); durations in seconds.
VIDEOS = {
    # id: (container, fps, seconds, face, audio track)
    "s1_a": ("avi", 25, 1.2, True, False),  # with s1_a.wav beside it
    "s1_b": ("mp4", 15, 0.8, True, True),  # audio from its own AAC track
    "s2_a": ("flv", 30, 0.6, False, False),  # no face; with s2_a.flac beside it
}
AUDIOS = {
    # id: (extension, sample rate, channels, seconds or None for espeak's length)
    "s1_a": ("wav", 22050, 1, None),  # speech
    "s2_a": ("flac", 48000, 2, 1.5),
    "s2_b": ("wav", 44100, 1, 1.2),  # audio only
}
LABELS = [
    ("s1_a.wav", "0.8,0.1,0.1", "1001", "Male", "Train"),
    ("s1_b.wav", "0.1,0.7,0.2", "1001", "Male", "Train"),
    ("s2_a.wav", "0.2,0.2,0.6", "1002", "Female", "Development"),
    ("s2_b.wav", "0.6,0.2,0.2", "1002", "Female", "Test"),
    ("bad_a.wav", "0.3,0.3,0.4", "1003", "Female", "Train"),
    ("bad_b.wav", "0.3,0.3,0.4", "1003", "Female", "Train"),
    ("ghost.wav", "0.3,0.3,0.4", "1003", "Female", "Test"),  # no recording
]
GOOD = ["s1_a", "s1_b", "s2_a", "s2_b"]


def vavl_binary():
    for cand in (os.environ.get("VAVL"), str(HERE.parent.parent / ".build" / "release" / "vavl"), shutil.which("vavl")):
        if cand and os.access(cand, os.X_OK):
            return cand
    return None


def run_extract(*args, env=None, check=None):
    e = dict(os.environ, HF_HUB_OFFLINE="1", **(env or {}))
    r = subprocess.run([sys.executable, str(EXTRACT), *map(str, args), "--progress", "none", "--threads", "2"],
                       capture_output=True, text=True, env=e)
    if check is not None and r.returncode != check:
        raise AssertionError(f"extract.py exited {r.returncode} (expected {check})\n{r.stdout}\n{r.stderr}")
    return r


# ----------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def work(tmp_path_factory):
    return tmp_path_factory.mktemp("extract")


@pytest.fixture(scope="session")
def models(work):
    import torch
    import torchvision
    from transformers import Wav2Vec2Config, Wav2Vec2FeatureExtractor, Wav2Vec2Model
    torch.manual_seed(0)
    # Same classes as wav2vec2-large-robust (layer-norm feature encoder, stable layer norm),
    # with the real convolution strides (320 samples = 20 ms per frame), tiny widths.
    cfg = Wav2Vec2Config(hidden_size=HIDDEN, num_hidden_layers=2, num_attention_heads=2, intermediate_size=48,
                         conv_dim=(16,) * 7, feat_extract_norm="layer", do_stable_layer_norm=True,
                         num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4, architectures=["Wav2Vec2Model"])
    w2v = work / "tiny-wav2vec2"
    Wav2Vec2Model(cfg).eval().save_pretrained(w2v)
    Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=16000, do_normalize=True, return_attention_mask=True).save_pretrained(w2v)
    b2 = torchvision.models.efficientnet_b2(weights=None).eval()
    b2_file = work / "efficientnet_b2_random.pth"
    torch.save(b2.state_dict(), b2_file)
    return {"audio": w2v, "video": b2_file}


def astronaut_face_box(rgb):
    """The face box in the astronaut photograph (OpenCV's cascade on the still image)."""
    tracker = extract.FaceTracker()
    box = tracker.detect(rgb, None)
    assert box is not None
    return box


def face_path(k_src, fps):
    """Scale and top-left offset of the photograph in source frame k_src: it moves right
    and down at 100 and 25 pixels per second and grows by 15 % per second."""
    t = k_src / fps
    return 0.55 + 0.15 * t, 20 + 100 * t, 10 + 25 * t


def render_frame(photo, k_src, fps):
    import cv2
    bg = np.full((H, W, 3), 90, np.uint8)
    bg[:] += (np.arange(W, dtype=np.uint8)[None, :, None] // 8)
    scale, x, y = face_path(k_src, fps)
    ph = cv2.resize(photo, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    x0, y0 = int(round(x)), int(round(y))
    h, w = min(ph.shape[0], H - y0), min(ph.shape[1], W - x0)
    bg[y0:y0 + h, x0:x0 + w] = ph[:h, :w]
    return bg


def write_video(path, fps, seconds, face, audio, photo):
    import av
    n = int(round(fps * seconds))
    rng = np.random.default_rng(1)
    with av.open(str(path), "w") as c:
        codec = "flv" if path.suffix == ".flv" else "mpeg4"
        vs = c.add_stream(codec, rate=fps)
        vs.width, vs.height, vs.pix_fmt = W, H, "yuv420p"
        vs.options = {"qscale": "3"} if codec == "mpeg4" else {}
        as_ = c.add_stream("aac", rate=44100, layout="stereo") if audio else None
        for k in range(n):
            img = render_frame(photo, k, fps) if face else \
                np.clip(rng.normal(120, 40, (H, W, 3)), 0, 255).astype(np.uint8)
            for p in vs.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                c.mux(p)
        for p in vs.encode():
            c.mux(p)
        if as_ is not None:
            sr, total = 44100, int(round(seconds * 44100))
            t = np.arange(total) / sr
            x = (0.3 * np.sin(2 * np.pi * 220 * t) * (1 + 0.5 * np.sin(2 * np.pi * 3 * t))).astype(np.float32)
            stereo = np.stack([x, 0.5 * x])
            for i in range(0, total, 1024):
                f = av.AudioFrame.from_ndarray(np.ascontiguousarray(stereo[:, i:i + 1024]), format="fltp", layout="stereo")
                f.sample_rate = sr
                for p in as_.encode(f):
                    c.mux(p)
            for p in as_.encode():
                c.mux(p)
    return n


def write_wav(path, x, sr):
    pcm = (np.clip(x, -1, 1) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1 if pcm.ndim == 1 else pcm.shape[0])
        w.setsampwidth(2)
        w.setframerate(sr)
        w.writeframes(pcm.T.tobytes() if pcm.ndim == 2 else pcm.tobytes())


def write_flac(path, x, sr):
    import av
    with av.open(str(path), "w") as c:
        s = c.add_stream("flac", rate=sr, layout="stereo" if x.shape[0] == 2 else "mono")
        f = av.AudioFrame.from_ndarray(np.ascontiguousarray((x * 32767).astype(np.int16).T.reshape(1, -1)), format="s16",
                                       layout="stereo" if x.shape[0] == 2 else "mono")
        f.sample_rate = sr
        for p in s.encode(f):
            c.mux(p)
        for p in s.encode():
            c.mux(p)


def tone(seconds, sr, channels):
    t = np.arange(int(round(seconds * sr))) / sr
    x = 0.3 * np.sin(2 * np.pi * 150 * t) * (1 + np.sin(2 * np.pi * 4 * t)) / 2
    x = x + 0.1 * np.sin(2 * np.pi * 450 * t)
    return np.stack([x, x[::-1]]) if channels == 2 else x


@pytest.fixture(scope="session")
def media(work):
    from skimage import data
    photo = data.astronaut()  # 512 x 512 RGB, a real face
    rec = work / "recordings"
    (rec / "video").mkdir(parents=True)
    (rec / "audio").mkdir()
    info = {"photo_face": astronaut_face_box(photo), "durations": {}, "speech": "synthetic tone"}
    for uid, (ext, fps, sec, face, audio) in VIDEOS.items():
        n = write_video(rec / "video" / f"{uid}.{ext}", fps, sec, face, audio, photo)
        info["durations"][uid] = {"video": n / fps, "video_src_frames": n, "video_src_fps": fps}
        if audio:
            info["durations"][uid]["audio"] = sec
    for uid, (ext, sr, ch, sec) in AUDIOS.items():
        path = rec / "audio" / f"{uid}.{ext}"
        if sec is None:
            if shutil.which("espeak-ng"):
                subprocess.run(["espeak-ng", "-w", str(path), "Kids are talking by the door."], check=True)
                info["speech"] = "espeak-ng"
            else:
                write_wav(path, tone(2.1, sr, 1), sr)
            with wave.open(str(path)) as w:
                sec = w.getnframes() / w.getframerate()
        elif ext == "flac":
            write_flac(path, tone(sec, sr, ch), sr)
        else:
            write_wav(path, tone(sec, sr, ch), sr)
        info["durations"].setdefault(uid, {})["audio"] = sec
    (rec / "audio" / "bad_a.wav").write_bytes(b"RIFF\x10\x00\x00\x00WAVEfmt garbage" + os.urandom(300))
    (rec / "video" / "bad_b.avi").write_bytes(np.random.default_rng(2).bytes(20000))  # not a video at all
    labels = work / "labels_authors.csv"
    with open(labels, "w") as f:
        f.write("FileName,angry,sad,neutral,SpkrID,Gender,Split_Set\n")
        for row in LABELS:
            f.write(",".join(row) + "\n")
    info["rec"], info["labels"] = rec, labels
    return info


@pytest.fixture(scope="session")
def full_run(work, models, media):
    out = work / "out"
    r = run_extract(media["rec"], "--out", out, "--labels", media["labels"], "--audio-model", models["audio"],
                    "--video-model", models["video"])
    assert r.returncode == 3, f"expected exit 3 (some files failed)\n{r.stdout}\n{r.stderr}"
    return {"out": out, "log": r.stderr, "manifest": json.loads((out / "manifest.json").read_text())}


# ----------------------------------------------------------------------------- tests


def test_missing_boxes_keep_the_previous_one_and_the_first_fills_the_start():
    """The rules of a frame without a detection, before smoothing: frames before the first
    detection take the first box, a gap mid-clip keeps the box before it; no face at all
    gives None (the caller then uses the centre crop and reports it)."""
    a, b = np.array([10.0, 20, 110, 120]), np.array([50.0, 60, 150, 160])
    filled = extract.fill_and_smooth([None, None, a, None, None, b, None], window=1)
    np.testing.assert_array_equal(filled, np.stack([a, a, a, a, a, b, b]))
    assert extract.fill_and_smooth([None, None, None], window=5) is None
    assert extract.fill_and_smooth([], window=5) is None


def test_smoothing_is_a_centred_moving_average_with_held_ends():
    """A step from box a to box b, smoothed over 3 frames: the frame before and after the
    step move a third of the way; a constant track and the ends stay as they are."""
    a, b = np.array([0.0, 0, 30, 30]), np.array([30.0, 0, 60, 30])
    smoothed = extract.fill_and_smooth([a, a, a, b, b, b], window=3)
    assert smoothed.shape == (6, 4)
    np.testing.assert_allclose(smoothed[0], a)
    np.testing.assert_allclose(smoothed[2], a + (b - a) / 3)
    np.testing.assert_allclose(smoothed[3], a + 2 * (b - a) / 3)
    np.testing.assert_allclose(smoothed[5], b)
    constant = extract.fill_and_smooth([a] * 4, window=5)
    np.testing.assert_allclose(constant, np.stack([a] * 4))


def test_square_crop_stays_inside_the_frame():
    """The crop is square, enlarged by the margin, moved inside the frame, and shrunk only
    when the frame is smaller than it."""
    x0, y0, x1, y1 = extract.square_crop_box((100, 100, 140, 160), width=640, height=480, margin=0.25)
    assert (x1 - x0) == (y1 - y0) == 90
    x0, y0, x1, y1 = extract.square_crop_box((0, 0, 40, 40), width=640, height=480, margin=0.5)
    assert (x0, y0) == (0, 0) and x1 - x0 == 80
    x0, y0, x1, y1 = extract.square_crop_box((600, 440, 640, 480), width=640, height=480, margin=0.5)
    assert (x1, y1) == (640, 480)
    x0, y0, x1, y1 = extract.square_crop_box((0, 0, 400, 400), width=320, height=240, margin=0.5)
    assert (x0, y0, x1, y1)[2] - x0 == 240 and 0 <= x0 and x1 <= 320 and y1 <= 240


def test_outputs_shapes_and_dtypes(full_run):
    out = full_run["out"]
    for uid in GOOD:
        a = np.load(out / "audio" / f"{uid}.npy")
        assert a.dtype == np.float32 and a.ndim == 2 and a.shape[1] == HIDDEN and a.flags.c_contiguous
        assert np.isfinite(a).all()
    for uid in VIDEOS:
        v = np.load(out / "video" / f"{uid}.npy")
        assert v.dtype == np.float32 and v.ndim == 2 and v.shape[1] == 1408 and np.isfinite(v).all()
        assert v.std(axis=0).max() > 0  # frames differ
    assert not (out / "video" / "s2_b.npy").exists()  # audio-only utterance


def test_frame_counts_follow_durations(full_run, media):
    m = full_run["manifest"]
    for uid, d in media["durations"].items():
        u = m["utterances"][uid]
        a = np.load(full_run["out"] / "audio" / f"{uid}.npy")
        # 16 kHz, 320-sample hop (50 frames/s), 400-sample window: floor((16000 d - 400) / 320) + 1
        aac = VIDEOS.get(uid, (None,) * 5)[4]
        tol = 3 if aac else 0  # AAC adds priming/padding samples
        expected = (round(16000 * d["audio"]) - 400) // 320 + 1
        assert abs(a.shape[0] - expected) <= tol and abs(a.shape[0] - 50 * d["audio"]) <= tol + 1.25, (uid, a.shape, d)
        assert u["audio"]["frames"] == a.shape[0]
        assert abs(u["audio"]["seconds"] - d["audio"]) < (0.06 if tol == 3 else 0.002)
        if "video" in d:
            v = np.load(full_run["out"] / "video" / f"{uid}.npy")
            assert v.shape[0] == round(d["video"] * 30), (uid, v.shape, d)  # resampled to --video-fps 30
            assert u["video"]["frames"] == v.shape[0]
            assert abs(u["video"]["seconds"] - d["video"]) < 1e-6


def test_face_box_follows_the_face(full_run, media):
    """The smoothed box of each output frame against the known position of the face."""
    ref = media["photo_face"]  # in photograph pixels
    for uid in ("s1_a", "s1_b"):
        _, fps, sec, _, _ = VIDEOS[uid]
        n_src = media["durations"][uid]["video_src_frames"]
        boxes = np.load(full_run["out"] / "boxes" / f"{uid}.npy")
        assert boxes.shape == (round(sec * 30), 9)
        assert boxes[:, 8].mean() > 0.8, "the detector found the face in most frames"
        for k in range(len(boxes)):
            j = min(int(np.floor(k / 30 * fps + 1e-6)), n_src - 1)  # the source frame shown at output frame k
            s, x, y = face_path(j, fps)
            exp = np.array([ref[0] * s + x, ref[1] * s + y, ref[2] * s + x, ref[3] * s + y])
            size = exp[2] - exp[0]
            got = boxes[k, :4]
            centre_err = np.linalg.norm((got[:2] + got[2:]) / 2 - (exp[:2] + exp[2:]) / 2)
            assert centre_err < 0.15 * size, (uid, k, got, exp)
            assert abs((got[2] - got[0]) / size - 1) < 0.25, (uid, k, got, exp)
            cx0, cy0, cx1, cy1 = boxes[k, 4:8]  # the crop: square, inside the frame, around the face
            assert cx1 - cx0 == cy1 - cy0 and cx0 >= 0 and cy0 >= 0 and cx1 <= W and cy1 <= H
            assert cx0 <= (exp[0] + exp[2]) / 2 <= cx1 and cy0 <= (exp[1] + exp[3]) / 2 <= cy1


def test_astronaut_face_where_a_person_sees_it(media):
    # read by eye from the photograph (512 x 512): the face (brows to chin, ear to ear) spans
    # about x 180-270, y 65-165, centre (225, 115)
    x0, y0, x1, y1 = media["photo_face"]
    assert 205 < (x0 + x1) / 2 < 245 and 95 < (y0 + y1) / 2 < 135 and 70 < x1 - x0 < 130


def test_no_face_centre_crop_reported(full_run):
    m = full_run["manifest"]
    assert m["no_face"] == ["s2_a"]
    assert m["utterances"]["s2_a"]["video"]["no_face"] is True and m["utterances"]["s2_a"]["video"]["face_frames"] == 0
    boxes = np.load(full_run["out"] / "boxes" / "s2_a.npy")
    assert np.allclose(boxes[:, 4:8], [(W - H) / 2, 0, (W + H) / 2, H])
    assert "no face found in s2_a.flv" in full_run["log"]


def test_bad_files_reported_not_fatal(full_run):
    m = full_run["manifest"]
    failed = {f["id"]: f for f in m["failures"]}
    assert set(failed) == {"bad_a", "bad_b"}
    assert failed["bad_a"]["file"].endswith("bad_a.wav") and failed["bad_a"]["error"]
    assert failed["bad_b"]["file"].endswith("bad_b.avi") and failed["bad_b"]["error"]
    assert m["labels_without_recording"] == ["ghost"]
    assert m["counts"]["complete"] == 4 and m["counts"]["failed"] == 2
    for uid in ("bad_a", "bad_b"):
        assert not (full_run["out"] / "audio" / f"{uid}.npy").exists()
        assert not (full_run["out"] / "video" / f"{uid}.npy").exists()


def test_labels_csv_keeps_the_extracted_rows(full_run, media):
    with open(full_run["out"] / "labels.csv") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["FileName", "angry", "sad", "neutral", "SpkrID", "Gender", "Split_Set"]
    assert [r[0] for r in rows[1:]] == [f"{u}.wav" for u in GOOD]
    assert rows[1] == ["s1_a.wav", "0.8", "0.1", "0.1", "1001", "Male", "Train"]


def test_manifest_models_rates_lengths(full_run, models):
    m = full_run["manifest"]
    assert m["format"] == "vavl-extract-manifest" and m["version"] == 1
    a, v = m["audio"], m["video"]
    want = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in models["audio"].iterdir() if p.suffix in (".json", ".safetensors")}
    assert a["files"] == want and a["hash"]
    assert a["sample_rate"] == 16000 and a["frame_rate"] == 50.0 and a["hidden_size"] == HIDDEN
    assert a["layer"] == 2 and a["num_hidden_layers"] == 2 and a["model_type"] == "wav2vec2"
    assert v["sha256"] == hashlib.sha256(models["video"].read_bytes()).hexdigest()
    assert v["fps"] == 30.0 and v["dim"] == 1408 and v["input_size"] == 260 and v["face_detector_sha256"]
    assert m["utterances"]["s1_a"]["audio"]["source"].endswith("s1_a.wav")
    assert m["utterances"]["s1_b"]["audio"]["source"].endswith("s1_b.mp4")  # from the video's audio track
    assert m["utterances"]["s2_b"]["video"] is None
    assert set(m["software"]) >= {"torch", "transformers", "av", "opencv"}


def test_audio_same_as_the_model_direct_and_unbatched(full_run, models, media):
    """The saved features are the chosen hidden state of the model on the 16 kHz wave, and
    batching several utterances (padding + attention mask) changes nothing."""
    import torch
    from transformers import AutoModel
    enc = extract.AudioEncoder(models["audio"], -1, "cpu")
    w1 = extract.decode_audio(media["rec"] / "audio" / "s1_a.wav")
    w2 = extract.decode_audio(media["rec"] / "audio" / "s2_b.wav")
    assert abs(len(w1) / 16000 - media["durations"]["s1_a"]["audio"]) < 0.002
    single = enc.encode([w2])[0]
    both = enc.encode([w1, w2])
    assert np.allclose(both[1], single, atol=1e-4)
    model = AutoModel.from_pretrained(models["audio"]).eval()
    x = torch.from_numpy(((w1 - w1.mean()) / np.sqrt(w1.var() + 1e-7))[None].astype(np.float32))
    with torch.inference_mode():
        direct = model(x).last_hidden_state[0].numpy()
    saved = np.load(full_run["out"] / "audio" / "s1_a.npy")
    assert np.allclose(saved, direct, atol=1e-4) and np.allclose(both[0], direct, atol=1e-4)


def test_audio_layer(work, models, media):
    out = work / "out-layer0"
    run_extract(media["rec"] / "audio" / "s2_b.wav", "--out", out, "--audio-model", models["audio"], "--audio-layer", "0",
                "--no-video", check=0)
    l0 = np.load(out / "audio" / "s2_b.npy")
    enc = extract.AudioEncoder(models["audio"], 0, "cpu")
    assert np.allclose(l0, enc.encode([extract.decode_audio(media["rec"] / "audio" / "s2_b.wav")])[0], atol=1e-5)
    r = run_extract(media["rec"] / "audio" / "s2_b.wav", "--out", out, "--audio-model", models["audio"], "--audio-layer", "7", "--no-video")
    assert r.returncode != 0 and "--audio-layer 7" in r.stderr and "Traceback" not in r.stderr


def test_resume_skips_complete_utterances(full_run, models, media):
    out = full_run["out"]
    before = {p.name: p.stat().st_mtime_ns for p in (out / "video").iterdir()}
    r = run_extract(media["rec"], "--out", out, "--labels", media["labels"], "--audio-model", models["audio"],
                    "--video-model", models["video"], check=3)
    assert "4 already complete, 2 to extract" in r.stderr  # the two bad files are tried again
    assert before == {p.name: p.stat().st_mtime_ns for p in (out / "video").iterdir()}
    # a lost output (or a torn write, which atomic renames never leave) is redone, alone
    (out / "video" / "s1_b.npy").unlink()
    (out / "audio" / ".s1_a.npy.partial.tmp").write_bytes(b"torn")
    r = run_extract(media["rec"], "--out", out, "--labels", media["labels"], "--audio-model", models["audio"],
                    "--video-model", models["video"], check=3)
    assert "3 already complete, 3 to extract" in r.stderr
    assert np.load(out / "video" / "s1_b.npy").shape == (24, 1408)
    after = {p.name: p.stat().st_mtime_ns for p in (out / "video").iterdir()}
    assert all(after[k] == before[k] for k in before if k != "s1_b.npy")
    (out / "audio" / ".s1_a.npy.partial.tmp").unlink()


def test_shards_partition_the_work(work, models, media):
    out = work / "out-shards"
    common = [media["rec"], "--out", out, "--labels", media["labels"], "--audio-model", models["audio"], "--no-video"]
    r0 = run_extract(*common, "--shard", "0/2")
    m0 = json.loads((out / "manifest.json").read_text())
    r1 = run_extract(*common, "--shard", "1/2")
    m1 = json.loads((out / "manifest.json").read_text())
    ids = sorted(GOOD + ["bad_a", "bad_b"])
    assert f"(3 in shard 0/2)" in r0.stderr and f"(3 in shard 1/2)" in r1.stderr
    done0 = set(m0["utterances"]) | {f["id"] for f in m0["failures"]}
    assert done0 == set(ids[0::2]) and set(m0["not_yet_extracted"]) == set(ids[1::2])
    assert set(m1["utterances"]) == set(GOOD) and m1["not_yet_extracted"] == []
    for uid in GOOD:  # same features as the unsharded run
        assert np.allclose(np.load(out / "audio" / f"{uid}.npy"), np.load(work / "out" / "audio" / f"{uid}.npy"), atol=1e-5)


@pytest.mark.skipif(shutil.which("mpirun") is None, reason="no mpirun")
def test_mpirun_ranks_share_the_work(work, models, media):
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        pytest.skip("mpi4py is not installed (optional)")
    out = work / "out-mpi"
    r = subprocess.run(["mpirun", "--allow-run-as-root", "--oversubscribe", "-np", "2", sys.executable, str(EXTRACT),
                        media["rec"], "--out", out, "--labels", media["labels"], "--audio-model", models["audio"],
                        "--no-video", "--progress", "none", "--threads", "1"],
                       capture_output=True, text=True, env=dict(os.environ, HF_HUB_OFFLINE="1"))
    assert r.returncode in (0, 3), r.stderr
    assert "(3 in shard 0/2)" in r.stderr and "(3 in shard 1/2)" in r.stderr
    m = json.loads((out / "manifest.json").read_text())
    assert set(m["utterances"]) == set(GOOD) and m["not_yet_extracted"] == []


def test_hub_name_unreachable_is_a_clear_error(work, media):
    r = run_extract(media["rec"], "--out", work / "out-hub", "--audio-model", "audeering/wav2vec2-large-robust-12-ft-emotion-msp-dim")
    assert r.returncode != 0 and "cannot fetch it from the Hugging Face hub" in r.stderr and "Traceback" not in r.stderr


def test_bad_video_model_is_a_clear_error(work, media, tmp_path):
    import torch
    f = tmp_path / "not-b2.pth"
    torch.save({"weight": torch.zeros(3)}, f)
    r = run_extract(media["rec"] / "video" / "s2_a.flv", "--out", tmp_path / "o", "--no-audio", "--video-model", f)
    assert r.returncode != 0 and "not an EfficientNet-B2 state dict" in r.stderr


def test_default_video_weights_offline(work, media, tmp_path):
    """Without --video-model, torchvision's ImageNet weights: fetched if reachable (not on
    the project's machines), else a clear error naming the URL and --video-model."""
    r = run_extract(media["rec"] / "video" / "s2_a.flv", "--out", tmp_path / "o", "--no-audio")
    if r.returncode == 0:
        m = json.loads((tmp_path / "o" / "manifest.json").read_text())
        assert m["video"]["model"] == extract.TORCHVISION_B2 and m["video"]["sha256"]
    else:
        assert "cannot fetch torchvision's EfficientNet-B2 ImageNet weights" in r.stderr and "--video-model" in r.stderr
        assert "Traceback" not in r.stderr


@pytest.mark.skipif(vavl_binary() is None, reason="no vavl binary (VAVL=..., .build/release/vavl or PATH)")
def test_round_trip_through_vavl(full_run, work, models, media):
    vavl = vavl_binary()
    corpus = work / "corpus.h5"
    # a run with nothing left to compute: finalise and import
    r = run_extract(media["rec"], "--out", full_run["out"], "--labels", media["labels"], "--audio-model", models["audio"],
                    "--video-model", models["video"], "--import", corpus, "--task", "categorical", "--vavl", vavl)
    assert r.returncode == 3 and corpus.is_file(), r.stderr  # 3: the two bad files, reported again
    info = subprocess.run([vavl, "corpus", "inspect", str(corpus), "--json"], capture_output=True, text=True)
    if info.returncode != 0:  # older binaries: no --json on inspect
        info = subprocess.run([vavl, "corpus", "inspect", str(corpus)], capture_output=True, text=True)
    assert info.returncode == 0, info.stderr
    text = info.stdout
    assert "1408" in text and str(HIDDEN) in text
    v = subprocess.run([vavl, "corpus", "validate", str(corpus)], capture_output=True, text=True)
    assert v.returncode == 0, v.stdout + v.stderr
    run = work / "run"
    t = subprocess.run([vavl, "train", "--corpus", str(corpus), "--out", str(run), "--model", "tiny", "--epochs", "1",
                        "--batch-size", "2", "--progress", "none"], capture_output=True, text=True)
    assert t.returncode == 0, t.stdout + t.stderr
    preds = work / "predictions.csv"
    p = subprocess.run([vavl, "predict", "--checkpoint", str(run), "--audio", str(full_run["out"] / "audio"),
                        "--video", str(full_run["out"] / "video"), "--output", str(preds)], capture_output=True, text=True)
    assert p.returncode == 0, p.stdout + p.stderr
    with open(preds) as f:
        rows = list(csv.DictReader(f))
    assert sorted(r[next(iter(r))] for r in rows) == sorted(GOOD)
    heads = {r[next(iter(r))]: " ".join(r.values()) for r in rows}
    assert "audio_visual" in heads["s1_a"] and "audio_visual" not in heads["s2_b"]
