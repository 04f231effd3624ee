from django.urls import path

from submissions import views_csv

urlpatterns = [
    path("batches/csv/", views_csv.upload, name="csv_upload"),
    path("batches/csv/<int:pk>/", views_csv.preview, name="csv_preview"),
    path("batches/csv/<int:pk>/send/", views_csv.send, name="csv_send"),
    path("submissions/export.csv", views_csv.history_export, name="history_export"),
    path("batches/<int:pk>/export.csv", views_csv.batch_export, name="batch_export"),
]
