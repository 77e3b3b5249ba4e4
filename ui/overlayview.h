// One method's picture: the overlay image with wheel zoom, drag pan and patch hover.
//
// The scene is in original-image pixels (the overlay is drawn at the original's size, with the
// legend strip below it), so a scene position is an original pixel and patch_at() inverts it
// through the ImageGeometry. Hover reports the patch index; the window composes the tooltip
// (it knows every method's selection) and hands it back through showPatchTooltip().
#pragma once

#include <QGraphicsView>
#include <QImage>

#include "core/api.h"

class QGraphicsPixmapItem;
class QGraphicsRectItem;

namespace dlui {

class OverlayView : public QGraphicsView {
    Q_OBJECT
public:
    explicit OverlayView(QWidget* parent = nullptr);

    // pictureHeight: rows of `image` that show the picture (the rest is the legend strip).
    void setImage(const QImage& image, int pictureHeight);
    const QImage& image() const { return m_image; }
    void setImageGeometry(const dl::ImageGeometry& geometry) { m_geometry = geometry; }
    // LLaVA-NeXT: which view's tokens the mouse finds (1 tiles, 0 base image).
    void setTokenView(int view) { m_view = view; }

    // Patch under a viewport position, or -1.
    int patchAtViewport(const QPoint& pos) const;
    // Outlines a patch (-1: none); all columns outline the hovered patch together.
    void highlightPatch(int index);
    void showPatchTooltip(const QString& text, const QPoint& globalPos);
    QString hoverText() const { return m_hoverText; }
    int hoveredPatch() const { return m_hovered; }

    double zoomFactor() const;
    void zoomBy(double factor);
    void fitToWindow();

signals:
    void patchHovered(int index, QPoint globalPos);

protected:
    void wheelEvent(QWheelEvent* event) override;
    void mouseMoveEvent(QMouseEvent* event) override;
    void leaveEvent(QEvent* event) override;
    void resizeEvent(QResizeEvent* event) override;

private:
    QImage m_image;
    int m_pictureHeight = 0;
    dl::ImageGeometry m_geometry;
    int m_view = 1;
    QGraphicsPixmapItem* m_pixmap = nullptr;
    QGraphicsRectItem* m_highlight = nullptr;
    bool m_userZoomed = false;
    int m_hovered = -1;
    QString m_hoverText;
};

}  // namespace dlui
