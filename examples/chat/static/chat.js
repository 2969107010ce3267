// The chat page: one websocket to the handler, next to this page (…/chat/ws).
(() => {
  const $ = (id) => document.getElementById(id);
  const url = new URL('ws', location.href);
  url.protocol = location.protocol === 'https:' ? 'wss:' : 'ws:';
  const ws = new WebSocket(url);
  let me = null;

  const setStatus = (text) => ($('status').textContent = text);
  const line = (cls, text) => {
    const li = document.createElement('li');
    li.className = cls;
    li.textContent = text;
    $('log').append(li);
    li.scrollIntoView({ block: 'nearest' });
  };
  const showUsers = (users) => {
    $('users').replaceChildren(
      ...users.map((u) => {
        const li = document.createElement('li');
        li.textContent = u;
        if (u === me) li.className = 'me';
        return li;
      }),
    );
  };

  ws.addEventListener('open', () => setStatus('connected: pick a nickname'));
  ws.addEventListener('close', () => setStatus('disconnected'));
  ws.addEventListener('message', (event) => {
    const msg = JSON.parse(event.data);
    switch (msg.type) {
      case 'welcome':
        me = msg.nick;
        $('join').hidden = true;
        $('room').hidden = false;
        $('error').textContent = '';
        setStatus(`online as ${me}`);
        showUsers(msg.users);
        $('text').focus();
        break;
      case 'join':
        showUsers(msg.users);
        line('presence', `${msg.nick} joined`);
        break;
      case 'leave':
        showUsers(msg.users);
        line('presence', `${msg.nick} left`);
        break;
      case 'msg':
        line(msg.nick === me ? 'msg mine' : 'msg', `${msg.nick}: ${msg.text}`);
        break;
      case 'error':
        $('error').textContent = msg.message;
        break;
    }
  });

  $('join').addEventListener('submit', (event) => {
    event.preventDefault();
    ws.send(JSON.stringify({ type: 'join', nick: $('nick').value }));
  });
  $('say').addEventListener('submit', (event) => {
    event.preventDefault();
    const text = $('text').value;
    if (text.trim() === '') return;
    ws.send(JSON.stringify({ type: 'msg', text }));
    $('text').value = '';
  });
})();
