from app import batch


def test_document_has_the_configured_size() -> None:
    doc = batch.render_document(1, 100)
    assert len(doc) == batch.DOCUMENT_BYTES


def test_pool_size_never_exceeds_the_items() -> None:
    assert 1 <= batch.pool_size(3) <= 3
