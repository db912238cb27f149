"""Cabinet forms. The settings form is generated from ``instances.settings_spec`` and
validated by the very serializer setSettings uses, so the two never disagree."""

from __future__ import annotations

import re
from typing import Any, cast

from django import forms
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth import get_user_model
from django.contrib.auth.forms import AuthenticationForm, UserCreationForm
from django.http import HttpRequest

from dashboard import throttle
from engines import registry as engine_registry
from instances import api as instance_api
from instances import services, settings_spec
from instances.http import ValidationFailed, validate
from instances.models import Engine, Instance

PHONE_RE = re.compile(r"^\+?\d{7,15}$")
WIRE_NAME_RE = re.compile(r"'([A-Za-z][A-Za-z0-9]*)'")


def clean_phone(value: str) -> str:
    value = value.replace(" ", "").replace("-", "")
    if not PHONE_RE.match(value):
        raise forms.ValidationError("Enter the number with country code, digits only, e.g. 79001234567.")
    return value.lstrip("+")


# --- Accounts ------------------------------------------------------------------------


class SignupForm(UserCreationForm):  # type: ignore[type-arg]
    email = forms.EmailField(
        required=True, help_text="For password resets. We never share it.", widget=forms.EmailInput(attrs={"autocomplete": "email"})
    )
    company = forms.CharField(
        required=False, max_length=200, label="Company or project", help_text="Optional; shown in your cabinet."
    )

    class Meta(UserCreationForm.Meta):
        model = get_user_model()
        fields = ("username", "email")

    def clean_email(self) -> str:
        email = str(self.cleaned_data["email"]).strip().lower()
        if get_user_model().objects.filter(email__iexact=email).exists():
            raise forms.ValidationError("An account with this email already exists. Try logging in or resetting the password.")
        return email


class ThrottledLoginForm(AuthenticationForm):
    """Django's login form plus a per-(username, address) failure counter. The admin's
    login form (below) shares it: one lockout for the cabinet and /admin/login/."""

    error_messages = {
        **AuthenticationForm.error_messages,
        "locked": (
            "Too many failed attempts for this account from your address. "
            "For your security, logging in is paused for %(minutes)s minutes; "
            "you can reset your password meanwhile."
        ),
    }

    def clean(self) -> dict[str, Any]:
        request: HttpRequest | None = self.request
        username = str(self.cleaned_data.get("username") or "")
        address = throttle.client_address(request) if request is not None else "unknown"
        if username and throttle.is_locked(username, address):
            raise forms.ValidationError(
                self.error_messages["locked"], code="locked", params={"minutes": throttle.lockout_minutes()}
            )
        try:
            cleaned = super().clean()
        except forms.ValidationError:
            if username:
                throttle.record_failure(username, address)
            raise
        throttle.clear(username, address)
        return cleaned


class ThrottledAdminLoginForm(ThrottledLoginForm, AdminAuthenticationForm):
    """/admin/login/ with the cabinet's lockout: the admin used to bypass it (and the
    demo user is a superuser). AdminAuthenticationForm still refuses non-staff."""

    error_messages = {**ThrottledLoginForm.error_messages, **AdminAuthenticationForm.error_messages}


# --- Instances -----------------------------------------------------------------------


class InstanceCreateForm(forms.Form):
    name = forms.CharField(
        max_length=200, required=False, help_text="Something you will recognise, e.g. “Support line”. You can change it later."
    )
    engine = forms.ChoiceField(
        choices=Engine.choices,
        initial=Engine.EMULATOR,
        widget=forms.RadioSelect,
        help_text="Where the WhatsApp session runs.",
    )

    # The cloud engine's credentials (createInstance's "cloud" field): from Meta's
    # app dashboard, WhatsApp → API Setup, and the app's Basic settings.
    cloud_phone_number_id = forms.CharField(
        label="Phone number ID", max_length=64, required=False,
        help_text="WhatsApp → API Setup in your Meta app: the ID of the number (digits), not the number itself.",
    )
    cloud_access_token = forms.CharField(
        label="Access token", max_length=1000, required=False, widget=forms.PasswordInput,
        help_text="A permanent System User token with whatsapp_business_messaging. Stored encrypted; never shown again.",
    )
    cloud_app_secret = forms.CharField(
        label="App secret", max_length=1000, required=False, widget=forms.PasswordInput,
        help_text="App settings → Basic → App secret: Relay checks Meta's webhook signatures with it.",
    )
    cloud_verify_token = forms.CharField(
        label="Verify token", max_length=200, required=False,
        help_text="Any text you will paste into Meta's webhook settings; leave empty and Relay makes one.",
    )

    @property
    def available(self) -> list[str]:
        """Engines a new instance may use on this server (known and installed); the
        others are shown, disabled, with a note."""
        return engine_registry.installed()

    @property
    def cloud_fields(self) -> list[forms.BoundField]:
        return [self[name] for name in self.fields if name.startswith("cloud_")]

    def engine_options(self) -> dict[str, str] | None:
        """The chosen engine's options, in createInstance's wire names."""
        if self.cleaned_data.get("engine") != Engine.CLOUD:
            return None
        names = {"phoneNumberId": "cloud_phone_number_id", "accessToken": "cloud_access_token",
                 "appSecret": "cloud_app_secret", "verifyToken": "cloud_verify_token"}
        return {wire: str(self.cleaned_data.get(field) or "") for wire, field in names.items()}

    def clean_engine(self) -> str:
        engine = str(self.cleaned_data["engine"])
        try:
            engine_registry.check_installed(engine)
        except engine_registry.UnknownEngine as exc:
            raise forms.ValidationError(f"The {Engine(engine).label} engine cannot be used here: {exc}.") from exc
        return engine


class RenameForm(forms.Form):
    name = forms.CharField(max_length=200, help_text="Only you see this name.")

    def clean_name(self) -> str:
        name = str(self.cleaned_data["name"]).strip()
        if not name:
            raise forms.ValidationError("The name cannot be empty.")
        return name


class LinkPhoneForm(forms.Form):
    phone = forms.CharField(label="Phone number", max_length=20, help_text="The simulated phone that scans the QR code.")
    name = forms.CharField(label="Profile name", max_length=100, required=False)

    def clean_phone(self) -> str:
        return clean_phone(str(self.cleaned_data["phone"]))


class PairingCodeForm(forms.Form):
    phone = forms.CharField(label="Phone number", max_length=20, help_text="The number of the WhatsApp account to link.")

    def clean_phone(self) -> str:
        return clean_phone(str(self.cleaned_data["phone"]))


# --- Settings ------------------------------------------------------------------------

# How the form groups settings; a setting not listed lands in "Other", so a new line in
# settings_spec shows up here without touching the cabinet.
SETTING_GROUPS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    (
        "Webhook delivery",
        "Where Relay POSTs notifications. Leave the URL empty to fetch them with receiveNotification instead.",
        ("webhookUrl", "webhookUrlToken"),
    ),
    (
        "What to notify",
        "Each switch adds one kind of notification to the queue (and the webhook, if set).",
        (
            "incomingWebhook", "outgoingWebhook", "outgoingMessageWebhook", "outgoingAPIMessageWebhook",
            "stateWebhook", "pollMessageWebhook", "incomingCallWebhook", "outgoingCallWebhook",
            "incomingBlockWebhook", "editedMessageWebhook", "deletedMessageWebhook",
        ),
    ),
    (
        "Sending",
        "How messages leave the queue and how chats look to your contacts.",
        (
            "delaySendMessagesMilliseconds", "autoTyping", "linkPreview", "markIncomingMessagesReaded",
            "markIncomingMessagesReadedOnReply", "keepOnlineStatus",
        ),
    ),
    (
        "Protecting the number",
        "Relay's own limits that keep a real WhatsApp number from looking like a bulk sender "
        "(on by default for WhatsApp Web instances). Held messages wait in the queue.",
        ("sendJitterPercent", "newChatsPerHour", "warmUpDailyLimit", "warmUpDays"),
    ),
    ("Connection", "The WhatsApp session itself.", ("proxyInstance", "enableLidMode", "enableMessagesHistory")),
    (
        "Legacy and deprecated",
        "Kept for compatibility with old clients; most integrations never touch these.",
        ("sendFromUTC", "sendToUTC", "countryInstance", "deviceWebhook", "statusInstanceWebhook", "typeAccount", "sharedSession"),
    ),
)


# A person's words beside each API name (the API name stays the label's code part:
# it is what the customer's code sends).
SETTING_TITLES: dict[str, str] = {
    "webhookUrl": "Webhook URL",
    "webhookUrlToken": "Webhook authorization token",
    "incomingWebhook": "Incoming messages and files",
    "outgoingWebhook": "Delivery and read statuses of sent messages",
    "outgoingMessageWebhook": "Messages sent from the phone",
    "outgoingAPIMessageWebhook": "Messages sent through the API",
    "stateWebhook": "Connection state changes",
    "pollMessageWebhook": "Polls and poll votes",
    "incomingCallWebhook": "Incoming calls",
    "outgoingCallWebhook": "Outgoing calls",
    "incomingBlockWebhook": "Blocks and quota warnings",
    "editedMessageWebhook": "Edited messages",
    "deletedMessageWebhook": "Deleted messages",
    "delaySendMessagesMilliseconds": "Pause between sends",
    "autoTyping": "Typing indicator before texts",
    "sendJitterPercent": "Random extra pause between sends (%)",
    "newChatsPerHour": "Messages to new chats per hour",
    "warmUpDailyLimit": "Warm-up: first day's message limit",
    "warmUpDays": "Warm-up: days",
    "linkPreview": "Link previews",
    "markIncomingMessagesReaded": "Mark incoming messages read",
    "markIncomingMessagesReadedOnReply": "Mark a chat read when replying",
    "keepOnlineStatus": "Always appear online",
    "proxyInstance": "Proxy",
    "enableLidMode": "LID chat ids",
    "enableMessagesHistory": "Message history",
    "sendFromUTC": "Sending window start (UTC)",
    "sendToUTC": "Sending window end (UTC)",
    "countryInstance": "Country",
    "deviceWebhook": "Device notifications",
    "statusInstanceWebhook": "Socket status notifications",
    "typeAccount": "Account type",
    "sharedSession": "Shared session",
}


def setting_field(spec: settings_spec.SettingSpec) -> forms.Field:
    common: dict[str, Any] = {"label": spec.name, "help_text": spec.help, "required": False, "disabled": not spec.writable}
    if spec.kind in ("flag", "bool"):
        return forms.BooleanField(**common)
    if spec.kind == "int":
        # Bounds are checked by setSettings' serializer (same words as the API); the
        # browser hints them.
        attrs = {"min": spec.min_value, "max": spec.max_value, "inputmode": "numeric"}
        return forms.IntegerField(widget=forms.NumberInput(attrs={k: v for k, v in attrs.items() if v is not None}), **common)
    widget = forms.URLInput if spec.name == "webhookUrl" else forms.TextInput
    return forms.CharField(max_length=2000, strip=True, widget=widget(attrs={"spellcheck": "false"}), **common)


class SettingsForm(forms.Form):
    """Every setting of settings_spec; ``clean`` runs setSettings' own validation."""

    def __init__(self, *args: Any, instance: Instance, **kwargs: Any) -> None:
        kwargs["initial"] = {s.name: instance.setting(s.name) for s in settings_spec.SETTINGS}
        super().__init__(*args, **kwargs)
        self.instance = instance
        for spec in settings_spec.SETTINGS:
            self.fields[spec.name] = setting_field(spec)
        self.wire: dict[str, Any] = {}

    @property
    def titles(self) -> dict[str, str]:
        return SETTING_TITLES

    def groups(self) -> list[tuple[str, str, list[forms.BoundField]]]:
        placed: set[str] = set()
        result = []
        for title, intro, names in SETTING_GROUPS:
            fields = [self[n] for n in names if n in self.fields]
            placed.update(names)
            result.append((title, intro, fields))
        rest = [self[s.name] for s in settings_spec.SETTINGS if s.name not in placed]
        if rest:
            result.insert(len(result) - 1, ("Other", "", rest))
        return result

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if self.errors:
            return cleaned
        wire: dict[str, Any] = {}
        for spec in settings_spec.SETTINGS:
            if not spec.writable:
                continue
            value = cleaned.get(spec.name)
            if spec.kind == "flag":
                wire[spec.name] = "yes" if value else "no"
            elif spec.kind == "bool":
                wire[spec.name] = bool(value)
            elif spec.kind == "int":
                if value is None:
                    self.add_error(spec.name, "Enter a whole number.")
                    continue
                wire[spec.name] = value
            else:
                wire[spec.name] = value or ""
        if self.errors:
            return cleaned
        try:
            self.wire = validate(instance_api.SetSettings.Input, wire)
        except ValidationFailed as exc:
            names = [n for n in WIRE_NAME_RE.findall(exc.detail) if n in self.fields]
            field = names[0] if names else None
            # A person's words first, then the API's own (what setSettings would answer).
            title = SETTING_TITLES.get(field or "", "")
            lead = f"{title} was not accepted. The API says: " if title else "Not accepted. The API says: "
            self.add_error(field, lead + exc.detail)
            return cleaned
        # A setting this engine cannot honour: refused on its field, nothing saved
        # (the cabinet posts every setting, so only a value other than the default is).
        found = services.inert_setting(self.instance.engine, self.changes())
        if found:
            name, sentence = found
            self.add_error(name, f"{SETTING_TITLES.get(name, name)} cannot be turned on here. The API says: {sentence}")
        return cleaned

    def changes(self) -> dict[str, Any]:
        """Validated values in stored form, for ``services.update_settings``."""
        return instance_api.settings_changes(self.wire)


def recommended_changes() -> dict[str, Any]:
    """GREEN-API's recommended notification set, validated by setSettings' own
    serializer, in stored form for ``services.update_settings``."""
    return instance_api.settings_changes(validate(instance_api.SetSettings.Input, settings_spec.RECOMMENDED_NOTIFICATIONS))


class ReplyForm(forms.Form):
    message = forms.CharField(
        max_length=20_000, label="Reply", strip=False,
        widget=forms.Textarea(attrs={"rows": 2, "placeholder": "Type a message", "autocomplete": "off"}),
    )

    def clean_message(self) -> str:
        text = str(self.cleaned_data["message"])
        if not text.strip():
            raise forms.ValidationError("Write a message first.")
        return text


# --- Webhook test ------------------------------------------------------------------------


class WebhookTestForm(forms.Form):
    url = forms.URLField(required=False, assume_scheme="https", help_text="Leave empty to use the saved webhook URL.")


# --- Emulator sandbox -------------------------------------------------------------------


class ContactForm(forms.Form):
    phone = forms.CharField(max_length=20, label="Phone number")
    name = forms.CharField(max_length=100, required=False)
    registered = forms.BooleanField(
        required=False, initial=True, label="Has WhatsApp", help_text="Untick to simulate a number without a WhatsApp account."
    )
    script = forms.ChoiceField(
        choices=[("", "Does nothing"), ("echo", "Echoes every message back")], required=False, label="Behaviour"
    )
    call_rule = forms.ChoiceField(
        choices=[("answer", "Answers"), ("reject", "Rejects"), ("silent", "Lets it ring")],
        required=False,
        initial="answer",
        label="When the instance calls",
    )

    def clean_phone(self) -> str:
        return clean_phone(str(self.cleaned_data["phone"]))


class DialForm(forms.Form):
    phone = forms.CharField(max_length=20, label="Contact's number")

    def clean_phone(self) -> str:
        return clean_phone(str(self.cleaned_data["phone"]))


class CallForm(forms.Form):
    phone = forms.CharField(max_length=20, label="Caller's number")
    outcome = forms.ChoiceField(
        choices=[("", "Keeps ringing"), ("pickUp", "Picked up"), ("hungUp", "Caller hung up"), ("declined", "Declined")],
        required=False,
    )

    def clean_phone(self) -> str:
        return clean_phone(str(self.cleaned_data["phone"]))


class ForceStateForm(forms.Form):
    """The states a sandbox may force (the emulator's list)."""

    state = forms.ChoiceField(choices=())

    def __init__(self, *args: Any, choices: tuple[tuple[str, str], ...] = (), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        cast(forms.ChoiceField, self.fields["state"]).choices = list(choices)


# --- Webhook redelivery ------------------------------------------------------------------


class RedeliverForm(forms.Form):
    """One receiptId (both ends equal) or an inclusive range."""

    receipt_from = forms.IntegerField(min_value=1, label="From receiptId")
    receipt_to = forms.IntegerField(
        min_value=1, required=False, label="To receiptId", help_text="Inclusive. Leave empty for just one notification."
    )

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        low = cleaned.get("receipt_from")
        high = cleaned.get("receipt_to")
        if low is not None and high is None and "receipt_to" not in self.errors:
            cleaned["receipt_to"] = high = low
        if low is not None and high is not None and high < low:
            self.add_error("receipt_to", "The range ends before it starts: “To” must not be lower than “From”.")
        return cleaned


# --- Account -------------------------------------------------------------------------------


class RotatePartnerTokenForm(forms.Form):
    confirm = forms.BooleanField(
        label="I understand: the current partner token stops working at once",
        error_messages={"required": "Tick the box to confirm: scripts using the old token will get 401 errors."},
    )
