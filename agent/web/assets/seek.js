// Time links (<a href="#t=SECONDS">) anywhere in the page seek the video player to SECONDS.
// One delegated listener in the capture phase, so links inside the chat, the timeline table
// and later-rendered answers all work, and the chat's own link handling never opens a tab.
(() => {
  const PLAYER = "#ba-player video";

  function seek(seconds) {
    const video = document.querySelector(PLAYER);
    if (!video) return false;
    const go = () => {
      const end = Number.isFinite(video.duration) ? video.duration : seconds;
      video.currentTime = Math.max(0, Math.min(seconds, end));
      video.dataset.baLastSeek = String(seconds);
      const playing = video.play();
      if (playing && playing.catch) playing.catch(() => {});
    };
    // Before metadata has loaded, a seek is lost: wait for it once.
    if (video.readyState >= 1) go();
    else video.addEventListener("loadedmetadata", go, { once: true });
    const box = video.getBoundingClientRect();
    if (box.bottom < 0 || box.top > window.innerHeight) {
      video.scrollIntoView({ behavior: "smooth", block: "center" });
    }
    return true;
  }

  document.addEventListener(
    "click",
    (event) => {
      const link = event.target.closest && event.target.closest('a[href^="#t="]');
      if (!link) return;
      const seconds = parseFloat(link.getAttribute("href").slice(3));
      if (!Number.isFinite(seconds)) return;
      event.preventDefault();
      event.stopPropagation();
      seek(seconds);
    },
    true,
  );
  window.baSeek = seek;
})();
