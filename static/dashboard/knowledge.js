// An agent's knowledge: while a document is pending (indexing runs in the background), fetch the
// page again every two seconds and swap in its list of documents, so their status moves on by
// itself; a reload would throw away what is typed in the forms below.
(function () {
  const REFRESH_MS = 2000;

  function pending() {
    const table = document.getElementById('documents');
    return table && table.dataset.pending === 'true';
  }

  async function refresh() {
    try {
      const response = await fetch(location.pathname, { credentials: 'same-origin' });
      if (response.ok) {
        const page = new DOMParser().parseFromString(await response.text(), 'text/html');
        const fresh = page.getElementById('documents');
        if (fresh) document.getElementById('documents').replaceWith(fresh);
        const note = document.getElementById('pendingNote');
        if (note && !pending()) note.textContent = 'Every document is indexed.';
      }
    } catch (error) {
      // The server restarting, say: try again at the next tick.
    }
    if (pending()) setTimeout(refresh, REFRESH_MS);
  }

  if (pending()) setTimeout(refresh, REFRESH_MS);
})();
