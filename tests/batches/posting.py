"""What a member posts to make a batch: the batch form, and a CSV file uploaded, previewed and sent. Shared
by the batch and CSV tests and by the duplicate-guard and crafted-input tests."""

import csv
import io

from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from submissions.models import CsvUpload

NEW_BATCH = reverse("submissions:new_batch")
VIDEO = "https://cdn.example.com/episode-4.mp4"


def batch_post(languages, **extra):
    data = {"name": "Episode 4", "video_url": VIDEO, "rows-TOTAL_FORMS": str(len(languages)),
            "rows-INITIAL_FORMS": "0", "rows-MIN_NUM_FORMS": "1", "rows-MAX_NUM_FORMS": "100"}
    for n, language in enumerate(languages):
        data[f"rows-{n}-target_language"] = language
        data[f"rows-{n}-audio_url"] = f"https://cdn.example.com/episode-4-{language}.wav"
    return {**data, **extra}


UPLOAD = reverse("submissions:csv_upload")
HEADER = ["video_url", "audio_url", "language", "reference_id", "title", "disable_active_speaker_detection"]


def job(n: int = 1, **changes) -> dict:
    return {
        "video_url": f"https://cdn.example.com/episode-{n}.mp4",
        "audio_url": f"https://cdn.example.com/episode-{n}-de.wav",
        "language": "de",
        "reference_id": f"ep{n}-de",
        "title": f"Episode {n} (German)",
        "disable_active_speaker_detection": "",
        **changes,
    }


def csv_text(rows: list[dict], *, delimiter: str = ",", header: list[str] = HEADER) -> str:
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter, lineterminator="\r\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow([row.get(name, "") for name in header])
    return out.getvalue()


def upload(client, content, *, name: str = "episodes.csv", batch_name: str = "", url: str = UPLOAD):
    data = content if isinstance(content, bytes) else content.encode()
    return client.post(url, {"file": SimpleUploadedFile(name, data, "text/csv"), "batch_name": batch_name})


def preview_of(client, content, **kwargs) -> tuple[CsvUpload, str]:
    response = upload(client, content, **kwargs)
    assert response.status_code == 302, response.content.decode()[:2000]
    stored = CsvUpload.objects.latest("pk")
    assert response["Location"] == reverse("submissions:csv_preview", args=[stored.pk])
    return stored, client.get(response["Location"]).content.decode()


def send(client, stored: CsvUpload):
    return client.post(reverse("submissions:csv_send", args=[stored.pk]))
