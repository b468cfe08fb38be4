"""UI-free application logic: the state (and its URL form), the tab registry, the session (state -> context,
caches, the file plan) and the interactions (hit -> tooltip / action). Pure Python; no js imports."""
