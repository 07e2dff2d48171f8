"""Label sets and the emotion → valence/arousal table the reference uses (VEMOCLAP, Sulun et al. 2024)."""

from __future__ import annotations

# Ekman-6 in the reference's order: index = class id.
EMOTIONS: tuple[str, ...] = ("anger", "disgust", "fear", "joy", "sadness", "surprise")

# Labels of "trpakov/vit-face-expression", in its id order.
FACE_EXPRESSIONS: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise")

# Labels of "cardiffnlp/twitter-roberta-base-sentiment-latest", in its id order.
SENTIMENTS: tuple[str, ...] = ("negative", "neutral", "positive")

# emotion → ((valence mean, std), (arousal mean, std)), for a circumplex view.
VALENCE_AROUSAL: dict[str, tuple[tuple[float, float], tuple[float, float]]] = {
    "anger": ((-0.51, 0.20), (0.59, 0.29)),
    "disgust": ((-0.60, 0.20), (0.35, 0.41)),
    "fear": ((-0.64, 0.20), (0.60, 0.32)),
    "joy": ((0.76, 0.22), (0.48, 0.26)),
    "sadness": ((-0.63, 0.23), (-0.27, 0.34)),
    "surprise": ((0.40, 0.30), (0.67, 0.27)),
}

# One colour per emotion, shared by every plot and overlay (colour-blind friendly, Okabe–Ito).
EMOTION_COLORS: dict[str, str] = {
    "anger": "#D55E00",
    "disgust": "#009E73",
    "fear": "#785EF0",
    "joy": "#E69F00",
    "sadness": "#0072B2",
    "surprise": "#CC79A7",
}

# Facial expressions → the nearest Ekman emotion (neutral has none), for colours and tracks.
EXPRESSION_TO_EMOTION: dict[str, str | None] = {
    "angry": "anger",
    "disgust": "disgust",
    "fear": "fear",
    "happy": "joy",
    "neutral": None,
    "sad": "sadness",
    "surprise": "surprise",
}
