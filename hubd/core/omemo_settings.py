"""``omemo:``: end-to-end encrypted chat (XEP-0384, OMEMO 0.3 as the clients speak it).

``enabled`` is resolved while the file is validated: absent means on exactly
when the ``omemo`` extra (slixmpp-omemo) is installed; ``enabled: true``
without it is a config error that says what to install.
"""

from __future__ import annotations

import importlib.util

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

INSTALL_HINT = "OMEMO needs the omemo extra: pip install 'hubd[omemo]' (or enabled: false)"


def omemo_installed() -> bool:
    """Whether the ``omemo`` extra (slixmpp-omemo) is installed; looked up, never imported."""
    return importlib.util.find_spec("slixmpp_omemo") is not None


class OmemoSettings(BaseModel):
    """``omemo:``; after validation ``enabled`` is always a bool."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool | None = Field(
        default=None,
        validate_default=True,
        description="default: on when the omemo extra is installed",
    )
    require: bool = Field(
        default=False, description="refuse plaintext commands (answered with a hint)"
    )

    @field_validator("enabled")
    @classmethod
    def _resolve_enabled(cls, value: bool | None) -> bool:
        installed = omemo_installed()
        if value and not installed:
            raise ValueError(INSTALL_HINT)
        return installed if value is None else value

    @field_validator("require")
    @classmethod
    def _check_require(cls, value: bool, info: ValidationInfo) -> bool:
        if value and info.data.get("enabled") is False:
            raise ValueError("require: true needs OMEMO on (enabled: true)")
        return value
