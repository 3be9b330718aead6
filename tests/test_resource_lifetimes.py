"""Resources are bounded and released: the process's service cache, and the clip index each
grounding item opens in evaluation."""

from agent import api
from agent.context import Context


def test_the_service_cache_keeps_the_most_recently_used_few(tmp_path, monkeypatch):
    monkeypatch.setattr(api, "_services", type(api._services)())
    contexts = [Context(home=tmp_path / f"h{n}", top_k=n + 1) for n in range(api.MAX_SERVICES + 2)]
    first = api.get_service(contexts[0])
    for ctx in contexts[1:]:
        api.get_service(ctx)
        api.get_service(contexts[0])  # used again: stays
    assert len(api._services) == api.MAX_SERVICES
    assert api.get_service(contexts[0]) is first
    # The least recently used settings were dropped: asking again makes a new service.
    dropped = api.get_service(contexts[1])
    assert dropped.ctx == contexts[1] and len(api._services) == api.MAX_SERVICES


def test_grounding_closes_the_clip_index_it_opens(tmp_path, monkeypatch):
    import agent.index
    from agent.evaluation.annotations import Item
    from agent.evaluation.predictors import _ground_with_index
    from agent.knowledge import load_knowledge_base
    from tests.synthetic import write_video

    opened = []

    class Watched(agent.index.ClipIndex):
        closed = False

        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            opened.append(self)

        def close(self) -> None:
            self.closed = True
            super().close()

    monkeypatch.setattr(agent.index, "ClipIndex", Watched)
    ctx = Context(home=tmp_path / "home", learned_models=False, track_people=False)
    video = write_video(tmp_path / "clip.mp4", [2.0], fps=10.0, size=(160, 120))
    kb = load_knowledge_base(ctx)
    for query in ("someone waves", "a person smiles"):
        item = Item(media="clip.mp4", path=str(video), source="t", query=query, start_s=0, end_s=1)
        _ground_with_index(ctx, kb, item)
    grounding = [index for index in opened if type(index) is Watched]
    assert len(grounding) >= 2 and all(index.closed for index in grounding)
