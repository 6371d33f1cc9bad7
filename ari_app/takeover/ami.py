"""Wazo's convert_to_stasis over AMI: CLINIC_ADOPT set on both channels, then one Redirect
moves both (ExtraChannel) into [clinic-convert-to-stasis]."""

from __future__ import annotations

from ari_app.client import AriClient
from clinic import ami
from clinic.config import PbxConfig


class AmiRedirect:
    def __init__(self, pbx: PbxConfig, ari: AriClient) -> None:
        self.pbx = pbx
        self.ari = ari

    async def __call__(self, channel: str, extra: str, adopt: dict[str, str]) -> None:
        async with ami.AmiClient.from_config(self.pbx) as client:
            for chan_id, value in adopt.items():
                await client.action(
                    {
                        "Action": "Setvar",
                        "Channel": await self._name(chan_id),
                        "Variable": "CLINIC_ADOPT",
                        "Value": value,
                    }
                )
            await client.action(
                {
                    "Action": "Redirect",
                    "Channel": await self._name(channel),
                    "ExtraChannel": await self._name(extra),
                    "Context": "clinic-convert-to-stasis",
                    "Exten": "adopt",
                    "Priority": "1",
                    "ExtraContext": "clinic-convert-to-stasis",
                    "ExtraExten": "adopt",
                    "ExtraPriority": "1",
                }
            )

    async def _name(self, channel_id: str) -> str:
        return (await self.ari.channel(channel_id)).name
