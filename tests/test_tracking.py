"""People across frames (vemoclap.tracking): one tracker for the analysis's sampled frames (by
appearance), the annotated video and live mode (appearance and box overlap), on generated video with
two different faces (the astronaut and an LFW face) found by the offline LBP detector and told apart
by the tiny expression ViT's CLS feature."""

from __future__ import annotations

import csv

import numpy as np
import pandas as pd
import pytest

from vemoclap import extractors
from vemoclap.draw.overlay import distinct_faces
from vemoclap.extractors.base import Clip
from vemoclap.labels import FACE_EXPRESSIONS
from vemoclap.media import Frames
from vemoclap.testing.media import FACE_SIDE, faces_frame
from vemoclap.tracking import FaceTracker, people_summary

SIZE = (480, 270)  # width, height


class _Face:
    def __init__(self, box, feature=None, probabilities=None):
        self.box = box
        self.feature = None if feature is None else np.asarray(feature, float)
        self.probabilities = probabilities or {e: 1 / len(FACE_EXPRESSIONS) for e in FACE_EXPRESSIONS}


def test_close_frames_link_by_overlap_and_distant_ones_by_appearance():
    tracker = FaceTracker()
    left, right = (0, 0, 100, 100), (200, 0, 300, 100)
    a, b = [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]
    assert [t.person for t in tracker.update([_Face(left, a), _Face(right, b)], time=0.0)] == [1, 2]
    # 2 s later the faces have swapped sides: each box lies on the other person's last box
    assert [t.person for t in tracker.update([_Face(left, b), _Face(right, a)], time=2.0)] == [2, 1]
    # without appearance, boxes that moved a little are linked by overlap on close frames only
    plain = FaceTracker()
    assert [t.person for t in plain.update([_Face(left)], time=0.0)] == [1]
    assert [t.person for t in plain.update([_Face((10, 0, 110, 100))], time=0.04)] == [1]
    assert [t.person for t in plain.update([_Face((10, 0, 110, 100))], time=3.0)] == [2]
    # a face unlike everyone seen is a new person, even on the same spot
    assert [t.person for t in tracker.update([_Face(left, [0.0, 0.0, 1.0])], time=2.04)] == [3]


def test_smoothed_expression_follows_the_person():
    tracker = FaceTracker(alpha=0.5)
    happy = {e: float(e == "happy") for e in FACE_EXPRESSIONS}
    sad = {e: float(e == "sad") for e in FACE_EXPRESSIONS}
    tracker.update([_Face((0, 0, 50, 50), [1, 0], happy), _Face((100, 0, 150, 50), [0, 1], sad)], time=0.0)
    sad_now, happy_now = tracker.update([_Face((100, 0, 150, 50), [0, 1], sad), _Face((0, 0, 50, 50), [1, 0], sad)])
    assert (sad_now.person, sad_now.expression, sad_now.confidence) == (2, "sad", 1.0)
    assert happy_now.person == 1 and happy_now.probabilities[FACE_EXPRESSIONS.index("happy")] == 0.5


@pytest.fixture(scope="module")
def face_model(tiny_models):
    return extractors.get("face_emotion", models_dir=tiny_models, device="cpu", detector="lbp").load()


def _who(box, positions) -> int:
    """Which face (0: astronaut, 1: LFW) a detected box belongs to: the patch holding its centre,
    the one drawn on top (the LFW face) where both do."""
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    inside = [x <= cx < x + FACE_SIDE and y <= cy < y + FACE_SIDE for x, y in positions]
    return 1 if inside[1] else 0


def test_the_tiny_vits_feature_tells_the_two_faces_apart(face_model):
    """The premise of linking by appearance on tiny models, measured: the same face's features are
    closer to each other than to the other face's, wherever the faces are."""
    layouts = [_crossing(k, 41) for k in (0, 4, 36, 40)] + [_swapping(k) for k in (0, 1)]
    looks: dict[int, list] = {0: [], 1: []}
    for positions, faces in zip(layouts, face_model.analyze_images([faces_frame(p, SIZE) for p in layouts])):
        assert len(faces) == 2
        for face in faces:
            looks[_who(face.box, positions)].append(face.feature / np.linalg.norm(face.feature))
    a, b = np.stack(looks[0]), np.stack(looks[1])
    assert (a @ a.T).min() > (a @ b.T).max() and (b @ b.T).min() > (a @ b.T).max()


def _crossing(k: int, n: int) -> tuple[tuple[int, int], tuple[int, int]]:
    """The faces' positions in frame k of n: the astronaut goes right, the LFW face left, a little lower."""
    travel = SIZE[0] - FACE_SIDE - 20
    t = k / (n - 1)
    return (int(10 + t * travel), 25), (int(SIZE[0] - FACE_SIDE - 10 - t * travel), 95)


def test_annotated_video_keeps_each_person_as_the_faces_cross(face_model, tmp_path):
    from vemoclap.draw.overlay import iou
    from vemoclap.synth import make_video
    from vemoclap.video_export import export_annotated_video

    n = 41
    video = make_video(
        tmp_path / "crossing.mp4", frames=n, fps=25, size=SIZE, audio=None, crf=12,
        frame_fn=lambda k: faces_frame(_crossing(k, n), SIZE),
    )  # fmt: skip
    written = export_annotated_video(video, tmp_path / "annotated.mp4", face_model.analyze_image, progress=False)
    with open(written.csv_path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    by_frame: dict[int, list[dict]] = {}
    for row in rows:
        by_frame.setdefault(int(row["frame_index"]), []).append(row)
    person_of: dict[int, set[int]] = {0: set(), 1: set()}
    overlapping = []
    for k, found in by_frame.items():
        boxes = [tuple(int(r[c]) for c in ("x0", "y0", "x1", "y1")) for r in found]
        for row, box in zip(found, boxes):
            assert row["person"] == row["face"]  # the export's track is its person
            person_of[_who(box, _crossing(k, n))].add(int(row["person"]))
        if len(boxes) == 2 and iou(*boxes) > 0:
            overlapping.append(k)
    # premise: both faces are found nearly everywhere, and their boxes overlap for several frames mid-way
    assert len(rows) >= 2 * n - 4 and len(overlapping) >= 4 and min(overlapping) > 5 and max(overlapping) < n - 5
    # before, during and after the crossing: one person each, and not the same one
    assert person_of == {0: {1}, 1: {2}} or person_of == {0: {2}, 1: {1}}


def _swapping(k: int) -> tuple[tuple[int, int], tuple[int, int]]:
    """The faces side by side at one height, swapping sides every sampled frame (where the LBP
    cascade finds each face once)."""
    left, right = (60, 140), (300, 140)
    return (left, right) if k % 2 == 0 else (right, left)


def _people_by_face(frames, layout) -> dict[int, set[int]]:
    seen: dict[int, set[int]] = {0: set(), 1: set()}
    for frame in frames:
        assert len(distinct_faces(frame.faces)) == 2  # premise: both faces found in every sampled frame
        for face in frame.faces:
            seen[_who(face.box, layout(frame))].add(face.person)
    return seen


def test_sampled_frames_seconds_apart_keep_people_when_the_faces_swap_sides(face_model):
    images = np.stack([faces_frame(_swapping(k), SIZE) for k in range(8)])
    clip = Clip(frames=Frames(images, np.arange(8) * 2.0), audio=np.zeros(0, np.float32))  # 2 s apart
    out = face_model(clip)
    seen = _people_by_face(out.frames, lambda frame: _swapping(frame.frame_index))
    assert out.n_people == 2 and len(seen[0]) == len(seen[1]) == 1 and seen[0] != seen[1]
    # position alone cannot hold them: each face's box lies where the other face was the frame before
    plain = FaceTracker(near_seconds=float("inf"))
    for frame in out.frames:
        linked = plain.update(frame.faces, time=frame.timestamp, features=[None] * len(frame.faces))
        for face, tracked in zip(frame.faces, linked):
            face.person = tracked.person
    by_position = _people_by_face(out.frames, lambda frame: _swapping(frame.frame_index))
    assert len(by_position[0]) > 1 and len(by_position[1]) > 1


def test_result_people_timeline_json_and_csv(tiny_models, tmp_path):
    from vemoclap.pipeline import Analyzer
    from vemoclap.results import Result
    from vemoclap.synth import make_video

    fps = 5  # one layout per second, the sides swapping every second
    video = make_video(
        tmp_path / "swap.mp4", frames=16 * fps, fps=fps, size=SIZE, audio=None, crf=12,
        frame_fn=lambda k: faces_frame(_swapping(k // fps), SIZE),
    )  # fmt: skip
    analyzer = Analyzer(
        ["face_emotion"], models_dir=tiny_models, device="cpu", face_detector="lbp", classifier=None
    )  # fmt: skip
    result = analyzer(str(video))
    faces = result.face_output
    seen = _people_by_face(faces.frames, lambda frame: _swapping(int(round(frame.timestamp * fps)) // fps))
    assert len(seen[0]) == len(seen[1]) == 1 and seen[0] != seen[1]
    people = result.people()
    assert list(people["person"].unique()) == [1, 2] and len(people) == 2 * len(faces.frames)
    for _, rows in people.groupby("person"):  # smoothed per person: each row still a distribution
        assert rows["time"].is_monotonic_increasing
        assert np.allclose(rows[list(FACE_EXPRESSIONS)].sum(axis=1), 1.0, atol=1e-5)
    raw = result.faces.sort_values(["person", "time"]).reset_index(drop=True)
    mean = raw[raw["person"] == 1][list(FACE_EXPRESSIONS)].to_numpy().mean(axis=0)
    assert np.allclose(people[people["person"] == 1][list(FACE_EXPRESSIONS)].to_numpy().mean(axis=0), mean, atol=0.05)
    summary = people_summary(people)
    assert list(summary["person"]) == [1, 2] and set(summary["expression"]) <= set(FACE_EXPRESSIONS)
    # the JSON round-trip keeps each face's person; the feature stays in memory
    text = result.to_json()
    assert '"feature": [' not in text.split('"arrays"')[0]
    again = Result.from_json(text)
    pd.testing.assert_frame_equal(again.people(), people)
    assert "2 people" in again.summary()
    # people.csv beside faces.csv
    result.save(tmp_path / "out")
    saved = pd.read_csv(tmp_path / "out" / "people.csv")
    assert list(saved["person"]) == list(people["person"]) and "random_weights" in saved
    assert list(pd.read_csv(tmp_path / "out" / "faces.csv")["person"]) == list(result.faces["person"])
    # the app: one row per person, their face cut from the frame where it is largest, their dominant expression
    from vemoclap.app.views import people_html

    shown = people_html(result)
    assert shown.count("class='vemoclap-person'") == 2 and shown.count("<img src='data:image/png;base64,") == 2
    for person in summary.itertuples():
        assert f"<b>person {person.person}</b>" in shown and f"{person.expression} {person.share:.0%}" in shown
    assert "person 1" in again.summary() and "<img" not in people_html(again)  # no pixels kept in the JSON
    assert people_html(Result(source="none.mp4")) == ""
    # the annotated video numbers each person as the analysis did (its tracker starts from their looks)
    written = analyzer.export_annotated_video(result, tmp_path / "annotated.mp4", progress=False)
    exported = pd.read_csv(written.csv_path)
    assert exported["frame_index"].nunique() >= 16 * fps - 2
    for row in exported.itertuples():
        truth = _who((row.x0, row.y0, row.x1, row.y1), _swapping(row.frame_index // fps))
        assert {row.person} == seen[truth], row
