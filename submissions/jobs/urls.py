from django.urls import path

from submissions.jobs import views

urlpatterns = [
    path("", views.history, name="history"),
    path("submissions/export.csv", views.history_export, name="history_export"),
    path("submissions/new/", views.new_submission, name="new"),
    path("submissions/<int:pk>/", views.detail, name="detail"),
    path("submissions/<int:pk>/send-again/", views.send_again, name="send_again"),
    path("submissions/<int:pk>/refresh/", views.refresh, name="refresh"),
    path("submissions/<int:pk>/cancel/", views.cancel, name="cancel"),
]
