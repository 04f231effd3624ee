from django.urls import include, path

from submissions import views, views_batches, views_team

app_name = "submissions"
urlpatterns = [
    path("", views.history, name="history"),
    path("submissions/new/", views.new_submission, name="new"),
    path("submissions/<int:pk>/", views.detail, name="detail"),
    path("submissions/<int:pk>/send-again/", views.send_again, name="send_again"),
    path("submissions/<int:pk>/refresh/", views.refresh, name="refresh"),
    path("submissions/<int:pk>/cancel/", views.cancel, name="cancel"),
    path("batches/new/", views_batches.new_batch, name="new_batch"),
    path("batches/<int:pk>/", views_batches.batch_detail, name="batch"),
    path("batches/<int:pk>/retry-failed/", views_batches.retry_failed, name="batch_retry_failed"),
    path("team/members/", views_team.members, name="team_members"),
    path("team/members/<int:pk>/", views_team.update_member, name="team_member_update"),
    path("team/usage/", views_team.usage_page, name="team_usage"),
    path("", include("submissions.urls_csv")),
    path("", include("submissions.urls_uploads")),
    path("", include("submissions.urls_settings")),
]
