package gateway

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"time"
)

// TLSCertificate returns a self-signed certificate for the identity's
// Ed25519 key. Peers do not trust it through any CA: they pin the key
// (PeerOfCertificate), so its names and dates only need to parse.
func (id *Identity) TLSCertificate() (tls.Certificate, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		return tls.Certificate{}, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: string(id.PeerID())},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, id.priv.Public(), id.priv)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: id.priv}, nil
}

// PeerOfCertificate returns the PeerID of the Ed25519 key in a DER
// certificate.
func PeerOfCertificate(der []byte) (PeerID, error) {
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return "", err
	}
	pub, ok := cert.PublicKey.(ed25519.PublicKey)
	if !ok {
		return "", errors.New("the certificate's key is not Ed25519")
	}
	return peerIDOf(pub), nil
}

// PinnedTLS returns a TLS 1.3 configuration for id that accepts only the
// peer whose key is want, on both ends (the server requires a client
// certificate). Certificates are checked by key alone, never by a CA.
func PinnedTLS(id *Identity, want PeerID) (*tls.Config, error) {
	if _, err := ParsePeerID(string(want)); err != nil {
		return nil, err
	}
	cert, err := id.TLSCertificate()
	if err != nil {
		return nil, err
	}
	verify := func(raw [][]byte, _ [][]*x509.Certificate) error {
		if len(raw) == 0 {
			return errors.New("the peer sent no certificate")
		}
		got, err := PeerOfCertificate(raw[0])
		if err != nil {
			return err
		}
		if got != want {
			return fmt.Errorf("the peer is %s, not the authorized %s", got, want)
		}
		return nil
	}
	return &tls.Config{
		MinVersion:            tls.VersionTLS13,
		Certificates:          []tls.Certificate{cert},
		ClientAuth:            tls.RequireAnyClientCert,
		InsecureSkipVerify:    true, // no CA: VerifyPeerCertificate pins the key instead
		VerifyPeerCertificate: verify,
	}, nil
}
