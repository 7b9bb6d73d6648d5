from django.contrib.auth import views as auth_views
from django.urls import path

from web import views

urlpatterns = [
    path("", views.home, name="home"),
    path("accounts/login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("organization/", views.organization_switch, name="organization-switch"),
    path("new/", views.requirement_new, name="requirement-new"),
    path("executions/<uuid:execution_id>/", views.execution_detail, name="execution-detail"),
    path("executions/<uuid:execution_id>/summary/", views.execution_summary, name="execution-summary"),
    path("executions/<uuid:execution_id>/progress/", views.execution_progress, name="execution-progress"),
    path("executions/<uuid:execution_id>/results/", views.execution_results, name="execution-results"),
    path("executions/<uuid:execution_id>/pause/", views.execution_pause_view, name="execution-pause"),
    path("executions/<uuid:execution_id>/resume/", views.execution_resume_view, name="execution-resume"),
    path("executions/<uuid:execution_id>/cancel/", views.execution_cancel_view, name="execution-cancel"),
    path("executions/<uuid:execution_id>/answer/", views.execution_answer_view, name="execution-answer"),
    path("executions/<uuid:execution_id>/rate/", views.execution_rate_view, name="execution-rate"),
    path("apis/", views.apis, name="apis"),
    path("apis/<uuid:endpoint_id>/", views.endpoint_detail, name="endpoint-detail"),
    path("apis/<uuid:endpoint_id>/try/", views.endpoint_try_view, name="endpoint-try"),
    path("apis/<uuid:endpoint_id>/try.csv", views.endpoint_try_csv_view, name="endpoint-try-csv"),
    path("apis/<uuid:endpoint_id>/approve/", views.endpoint_approve_view, name="endpoint-approve"),
    path("apis/<uuid:endpoint_id>/reject/", views.endpoint_reject_view, name="endpoint-reject"),
    path("apis/<uuid:endpoint_id>/deploy/", views.endpoint_deploy_view, name="endpoint-deploy"),
    path("apis/<uuid:endpoint_id>/rollback/", views.endpoint_rollback_view, name="endpoint-rollback"),
    # Not /mcp/: that prefix belongs to the MCP protocol endpoints (nectar.routing).
    path("mcp-servers/", views.mcp, name="mcp"),
    path("memories/", views.memories, name="memories"),
    path("glossary/", views.glossary, name="glossary"),
    path("glossary/<uuid:memory_id>/edit/", views.glossary_edit, name="glossary-edit"),
    path("glossary/<uuid:memory_id>/remove/", views.glossary_remove_view, name="glossary-remove"),
    path("approvals/", views.approvals, name="approvals"),
    path("tokens/", views.tokens, name="tokens"),
    path("notifications/", views.notifications, name="notifications"),
    path("notifications/<int:notification_id>/open/", views.notification_open, name="notification-open"),
]
