"""UI-free application logic: the state (and its URL form), the tab registry, the session (state -> file plan
-> context, bounded caches), the typed view context, the interactions (hit -> tooltip / action) and the frame
(state -> everything the page shows, as plain data). Pure Python; no js imports."""
