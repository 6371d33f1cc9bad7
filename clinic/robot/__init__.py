"""Voice robot (Mango Office): export of next-day appointments, UpdateStatus handling,
the server task and its journal, the exchange log."""
