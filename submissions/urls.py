"""Every page of DubDash, one URL module per capability. The `submissions:` namespace keeps every name."""

from django.urls import include, path

app_name = "submissions"
urlpatterns = [
    path("", include("submissions.jobs.urls")),
    path("", include("submissions.batches.urls")),
    path("", include("submissions.uploads.urls")),
    path("", include("submissions.team.urls")),
    path("", include("submissions.apikey.urls")),
    path("", include("submissions.takes.urls")),
    path("", include("submissions.outputs.urls")),
    path("", include("submissions.outputs.zip_urls")),
    path("", include("submissions.reviews.urls")),
    path("", include("submissions.profiles.urls")),
]
