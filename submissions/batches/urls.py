from django.urls import path

from submissions.batches import csv_views, views

urlpatterns = [
    path("batches/new/", views.new_batch, name="new_batch"),
    path("batches/<int:pk>/", views.batch_detail, name="batch"),
    path("batches/<int:pk>/retry-failed/", views.retry_failed, name="batch_retry_failed"),
    path("batches/<int:pk>/export.csv", views.batch_export, name="batch_export"),
    path("batches/csv/", csv_views.upload, name="csv_upload"),
    path("batches/csv/<int:pk>/", csv_views.preview, name="csv_preview"),
    path("batches/csv/<int:pk>/send/", csv_views.send, name="csv_send"),
]
