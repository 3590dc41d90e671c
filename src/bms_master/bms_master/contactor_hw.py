"""Hardware abstraction of the contactor driver: coil outputs and auxiliary-contact feedback.

Shaped like a ros2_control hardware interface: ``write()`` drives the coils, ``read()`` returns
the feedback contacts (None when the board has none). The simulated backend acts on the plant of
the simulation host through the /sim topics; a real backend drives relays (e.g. over CAN).
"""

from __future__ import annotations

from abc import ABC, abstractmethod

from bms_master.state_machine import ContactorSet


class ContactorBackend(ABC):
    @abstractmethod
    def write(self, coils: ContactorSet) -> None:
        """Energise (True) or release each coil."""

    @abstractmethod
    def read(self) -> ContactorSet | None:
        """Auxiliary-contact feedback; None when not (yet) available."""

    def not_yet_applied(self) -> ContactorSet | None:
        """Contactors whose last written coil state the hardware has not applied yet, for a
        backend whose write reaches the coils later (the simulated plant, over DDS). Their
        feedback is not compared with the coil until then. None (the default): a write takes
        effect at once, as a board's coil driver does."""
        return None

    @property
    @abstractmethod
    def hardware_id(self) -> str:
        """Board serial or backend name."""
