"""espeak-ng: formant text-to-speech, the "obviously robotic" kind of fake.

Each reading picks a voice variant, speed and pitch from a seed, so the espeak-ng fakes are
not one voice (and two readings of one sentence are not the same audio). espeak-ng is
deterministic, so a seed always gives the same samples.
"""

from __future__ import annotations

import io
import shutil
import subprocess
from dataclasses import dataclass
from functools import cache

import numpy as np
import soundfile as sf

from deepfake_audio.corpus.errors import CorpusError

#: Voice variants shipped with espeak-ng itself (``espeak-ng-data/voices/!v``).
VARIANTS = ("m1", "m2", "m3", "m4", "m7", "f1", "f2", "f3", "f4", "klatt", "klatt3")
INSTALL_HINT = "apt-get install espeak-ng"

#: Sentences read for recordings without a transcript (``--real-dir`` without ``.txt`` files).
FALLBACK_SENTENCES = {
    "en": (
        "The quick brown fox jumps over the lazy dog.",
        "Please call me back when you get this message.",
        "The meeting has been moved to Thursday afternoon.",
        "I left my keys on the kitchen table again.",
        "Could you send me the report before noon?",
        "The train to the city leaves in ten minutes.",
        "We should plant more trees in the garden this spring.",
        "My bank will never ask for your password by phone.",
        "It is going to rain for most of the weekend.",
        "Turn left at the second traffic light.",
        "The museum is closed on Mondays.",
        "She bought fresh bread at the market this morning.",
        "Your order has been shipped and will arrive tomorrow.",
        "I think the battery of my phone is almost empty.",
        "Let us meet at the station at half past six.",
        "The children were playing football in the park.",
        "Remember to lock the door when you leave.",
        "This is a recorded message from your doctor's office.",
        "The price of coffee went up again last month.",
        "He has been learning to play the piano for years.",
    ),
    "nl": (
        "De snelle bruine vos springt over de luie hond.",
        "Bel me alsjeblieft terug als je dit bericht hoort.",
        "De vergadering is verplaatst naar donderdagmiddag.",
        "Ik heb mijn sleutels weer op de keukentafel laten liggen.",
        "Kun je me het verslag voor twaalf uur sturen?",
        "De trein naar de stad vertrekt over tien minuten.",
        "We moeten dit voorjaar meer bomen in de tuin planten.",
        "Mijn bank vraagt nooit telefonisch naar je wachtwoord.",
        "Het gaat het grootste deel van het weekend regenen.",
        "Sla bij het tweede verkeerslicht linksaf.",
        "Het museum is op maandag gesloten.",
        "Ze kocht vanochtend vers brood op de markt.",
        "Je bestelling is verzonden en komt morgen aan.",
        "Ik denk dat de batterij van mijn telefoon bijna leeg is.",
        "Laten we om half zeven bij het station afspreken.",
        "De kinderen speelden voetbal in het park.",
        "Vergeet niet de deur op slot te doen als je weggaat.",
        "Dit is een opgenomen bericht van uw huisartsenpraktijk.",
        "De prijs van koffie is vorige maand weer gestegen.",
        "Hij leert al jaren piano spelen.",
    ),
}


@dataclass(frozen=True)
class Voice:
    """How one reading sounds: ``espeak-ng -v <language>+<variant> -s <speed> -p <pitch>``."""

    variant: str
    speed: int  # words per minute
    pitch: int  # 0-99

    @classmethod
    def from_seed(cls, seed: int) -> Voice:
        rng = np.random.default_rng(seed)
        return cls(
            variant=VARIANTS[int(rng.integers(len(VARIANTS)))],
            speed=int(rng.integers(130, 191)),
            pitch=int(rng.integers(30, 71)),
        )

    def label(self) -> str:
        return f"{self.variant} s{self.speed} p{self.pitch}"


@cache
def espeak_binary() -> str:
    """Path of ``espeak-ng``; raises :class:`CorpusError` saying how to install it."""
    found = shutil.which("espeak-ng")
    if not found:
        raise CorpusError(f"espeak-ng not found on PATH: {INSTALL_HINT}")
    return found


def espeak_version() -> str:
    """espeak-ng's version line, for the build report."""
    result = subprocess.run(
        [espeak_binary(), "--version"], capture_output=True, text=True, check=False
    )
    return result.stdout.split("Data at:")[0].strip()


def check_language(language: str) -> None:
    """Raise :class:`CorpusError` unless espeak-ng has a voice for ``language``."""
    result = subprocess.run(
        [espeak_binary(), f"--voices={language}"], capture_output=True, text=True, check=False
    )
    lines = result.stdout.strip().splitlines()[1:]  # first line is the table header
    if not any(line.split()[1] == language for line in lines if len(line.split()) > 1):
        raise CorpusError(
            f"espeak-ng has no voice for language {language!r} (list them with: espeak-ng --voices)"
        )


def speak(text: str, language: str, voice: Voice) -> tuple[np.ndarray, int]:
    """Read ``text`` aloud; returns (mono float32 samples, sample rate).

    The text goes in on stdin so a sentence starting with ``-`` is not taken for an option.
    """
    command = [
        espeak_binary(),
        "-v",
        f"{language}+{voice.variant}",
        "-s",
        str(voice.speed),
        "-p",
        str(voice.pitch),
        "--stdout",
    ]
    result = subprocess.run(command, input=text.encode("utf-8"), capture_output=True, check=False)
    if result.returncode != 0 or not result.stdout:
        raise CorpusError(
            f"espeak-ng failed on {text[:40]!r} ({' '.join(command[1:])}): "
            f"{result.stderr.decode(errors='replace').strip()}"
        )
    samples, rate = sf.read(io.BytesIO(result.stdout), dtype="float32", always_2d=True)
    return samples.mean(axis=1), int(rate)
