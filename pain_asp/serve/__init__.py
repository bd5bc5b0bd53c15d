"""``pain-asp serve``: the HTTP API (:mod:`.app`) and the web page (:mod:`.page`) over the checker."""
