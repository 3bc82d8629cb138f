const { Crypto } = require(process.env.SF_CORE + '/lib/crypto/crypto.js');
async function enc(key, values) {
  const keychain = { getPassword: (o, fn) => fn(null, key), setPassword: (o, fn) => fn(null) };
  const c = await Crypto.create({ keychain, noResetOnClose: true });
  const out = {};
  for (const [k, v] of Object.entries(values)) out[k] = c.encrypt(v);
  out.__roundtrip = Object.fromEntries(Object.entries(out).filter(([k])=>k!=='__roundtrip').map(([k,v]) => [k, c.decrypt(v)]));
  c.close && c.close();
  return out;
}
(async () => {
  const v = process.argv[2];
  const key = v === 'v2' ? 'a'.repeat(0) + '00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff' : '0123456789abcdef0123456789abcdef';
  const r = await enc(key, { refreshToken: '5Aep861refresh.token==', clientSecret: 'sekret!é', accessToken: '00D5g000000XXXX!AQ0.token' });
  console.log(JSON.stringify({ key, ...r }, null, 1));
})().catch(e => { console.error(e); process.exit(1); });
