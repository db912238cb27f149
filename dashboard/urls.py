from django.contrib.auth import views as auth_views
from django.urls import include, path, reverse_lazy

from dashboard import devtools, forms, journal_views, sandbox_views, statuses_views, views

app_name = "dashboard"

auth_urlpatterns = [
    path("signup/", views.signup, name="signup"),
    path(
        "login/",
        auth_views.LoginView.as_view(authentication_form=forms.ThrottledLoginForm, redirect_authenticated_user=True),
        name="login",
    ),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path(
        "password/change/",
        auth_views.PasswordChangeView.as_view(success_url=reverse_lazy("dashboard:password_change_done")),
        name="password_change",
    ),
    path("password/change/done/", auth_views.PasswordChangeDoneView.as_view(), name="password_change_done"),
    path(
        "password/reset/",
        auth_views.PasswordResetView.as_view(
            success_url=reverse_lazy("dashboard:password_reset_done"),
            email_template_name="registration/password_reset_email.txt",
            subject_template_name="registration/password_reset_subject.txt",
        ),
        name="password_reset",
    ),
    path("password/reset/sent/", auth_views.PasswordResetDoneView.as_view(), name="password_reset_done"),
    path(
        "password/reset/<uidb64>/<token>/",
        auth_views.PasswordResetConfirmView.as_view(success_url=reverse_lazy("dashboard:password_reset_complete")),
        name="password_reset_confirm",
    ),
    path("password/reset/complete/", auth_views.PasswordResetCompleteView.as_view(), name="password_reset_complete"),
]

instance_urlpatterns = [
    path("", views.instance_detail, name="instance"),
    path("rename/", views.instance_rename, name="rename"),
    path("delete/", views.instance_delete, name="delete"),
    path("rotate-token/", views.instance_rotate_token, name="rotate_token"),
    path("link-phone/", views.instance_link_phone, name="link_phone"),
    path("pairing-code/", views.instance_pairing_code, name="pairing_code"),
    path("pairing-code/confirm/", views.instance_confirm_code, name="confirm_code"),
    path("logout/", views.instance_logout, name="logout_instance"),
    path("reboot/", views.instance_reboot, name="reboot"),
    path("settings/", views.instance_settings, name="settings"),
    path("settings/test-webhook/", views.instance_test_webhook, name="test_webhook"),
    path("settings/recommended/", views.instance_recommended_settings, name="recommended_settings"),
    path("settings/rotate-secret/", views.instance_rotate_webhook_secret, name="rotate_webhook_secret"),
    path("console/", views.api_console, name="console"),
    path("console/send/", views.api_console_send, name="console_send"),
    path("chats/", journal_views.chat_list, name="chats"),
    path("chats/<str:chat_id>/", journal_views.chat_view, name="chat"),
    path("chats/<str:chat_id>/group-action/", journal_views.chat_group_action, name="chat_group_action"),
    path("chats/<str:chat_id>/reply/", journal_views.chat_reply, name="chat_reply"),
    path("notifications/", journal_views.notifications, name="notifications"),
    path("webhooks/", journal_views.webhook_log, name="webhooks"),
    path("webhooks/redeliver/", journal_views.webhook_redeliver, name="webhook_redeliver"),
    path("usage/", views.usage_page, name="usage"),
    path("statuses/", statuses_views.statuses_page, name="statuses"),
    path("statuses/post/", statuses_views.statuses_post, name="statuses_post"),
    path("statuses/delete/", statuses_views.statuses_delete, name="statuses_delete"),
    path("statuses/contact/", statuses_views.statuses_contact, name="statuses_contact"),
    path("postman.json", devtools.postman_download, name="postman"),
    path("examples/<str:name>", devtools.receiver_download, name="receiver_example"),
    path("sandbox/", sandbox_views.sandbox_page, name="sandbox"),
    path("sandbox/contacts/", sandbox_views.sandbox_contact, name="sandbox_contact"),
    path("sandbox/send/", sandbox_views.sandbox_send, name="sandbox_send"),
    path("sandbox/call/", sandbox_views.sandbox_call, name="sandbox_call"),
    path("sandbox/call/end/", sandbox_views.sandbox_call_end, name="sandbox_call_end"),
    path("sandbox/call/dial/", sandbox_views.sandbox_dial, name="sandbox_dial"),
    path("sandbox/call/act/", sandbox_views.sandbox_call_act, name="sandbox_call_act"),
    path("sandbox/vote/", sandbox_views.sandbox_vote, name="sandbox_vote"),
    path("sandbox/read/", sandbox_views.sandbox_read, name="sandbox_read"),
    path("sandbox/block/", sandbox_views.sandbox_block, name="sandbox_block"),
    path("sandbox/state/", sandbox_views.sandbox_state, name="sandbox_state"),
]

urlpatterns = [
    path("", views.home, name="home"),
    path("dashboard/", views.instance_list, name="instances"),
    path("dashboard/account/", views.account, name="account"),
    path("dashboard/account/rotate-token/", views.account_rotate_token, name="rotate_partner_token"),
    path("dashboard/instances/new/", views.instance_create, name="create"),
    path("dashboard/instances/<int:instance_id>/", include(instance_urlpatterns)),
    path("dashboard/", include(auth_urlpatterns)),
]
