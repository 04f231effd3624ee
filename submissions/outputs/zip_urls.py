from django.urls import path

from submissions.outputs import zip_views

urlpatterns = [
    path("batches/<int:pk>/download.zip", zip_views.batch_zip, name="batch_zip"),
    path("submissions/download.zip", zip_views.history_zip, name="history_zip"),
]
